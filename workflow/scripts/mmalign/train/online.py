"""Online-DPO, Mixed-DPO and online BDHS (paper §3.2, §3.3, §4.6) on TRL's ``DPOTrainer``.

TRL 1.16 has no trainer that mixes offline and policy-sampled pairs, and its experimental OnlineDPOTrainer scores
completions pointwise (judges were removed). Here every training step makes its own pairs from the *current*
policy, inside ``training_step``, and then hands them to TRL's vision collator and DPO loss unchanged, so
``loss_type`` (DPO / IPO / SLiC), PEFT (reference = adapter disabled) and checkpointing work as offline:

* ``online``: the policy samples two answers per prompt (temperature in config); the pairwise judge picks one.
* ``mixed`` (Eq. 4): per example, with probability ``offline_prob`` (p = 0.5) the offline pair, otherwise the
  online pair for the same prompt. The draw is per example.
* ``online_bdhs``: rejected = BDHS from the current policy (chosen = the SFT answer); with ``rejected: both``
  the external rejected answer enters too (Avg-DPO, Eq. 5, as a second row). Its pair maker is
  ``mmalign.train.online_bdhs`` (a method module of its own, so BDHS code is hashed into its variants only).

A pair the judge cannot judge (failure, unparseable verdict) is dropped from that step and counted; two
identical samples are dropped too (their DPO gradient is zero). A step whose every pair is dropped is skipped.
Counts reach ``train_log.jsonl`` through ``log``. Randomness is derived from (seed, step, example id), so a
run resumed from a checkpoint draws exactly what the uninterrupted run drew.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mmalign.judges import check_budget
from mmalign.judges.base import PairRequest
from mmalign.models import generate
from mmalign.schema import read_pairs
from mmalign.seeding import stable_seed

from .chat_format import end_answers, frame_for_training
from .methods import METHODS, get

log = logging.getLogger(__name__)

MODES = tuple(m.online for m in METHODS.values() if m.online)  # online, mixed, online_bdhs
RAW_ROWS = True  # pairs are made in training_step from the raw rows


@dataclass
class OnlineSettings:
    """How a step makes its pairs (config ``variants.<name>.online``)."""

    mode: str = "online"
    offline_prob: float = 0.5  # Mixed-DPO's p: probability that an example uses its offline pair
    temperature: float = 1.0  # sampling temperature of the two online answers
    max_new_tokens: int = 64
    refresh_every: int = 1  # samples come from the policy as of the last refresh, every k steps (1: current)
    bdhs: dict = field(default_factory=dict)  # BDHSSettings for online_bdhs (rho_th, noise_steps, n_bdhs, ...)
    embedder: str | None = None  # online_bdhs: the similarity embedder (None: mmalign.bdhs.DEFAULT_EMBEDDER)
    # Budgets: a run above them fails and publishes no adapter (a row of the tables would silently be the base
    # model, or Mixed-DPO plain offline DPO). The annotator's own budget is its judge's max_failed_share / ...
    max_skipped_step_share: float = 0.1  # steps with no pair at all (every pair dropped)
    min_online_share: float | None = None  # of the pairs trained on; None: half of what the method asks for

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"online mode must be one of {MODES}, got {self.mode!r}")
        if not 0 <= self.offline_prob <= 1:
            raise ValueError("online offline_prob must lie in [0, 1]")
        if self.refresh_every < 1:
            raise ValueError("online refresh_every must be at least 1")

    def expected_online_share(self) -> float:
        return 1.0 - self.offline_prob if self.mode == "mixed" else 1.0


def uses_offline_pair(settings: OnlineSettings, seed: int, step: int, example_id: str) -> bool:
    """Mixed-DPO's Bernoulli(p) draw for one example at one step (always False for the pure online modes)."""
    if settings.mode != "mixed":
        return False
    return random.Random(stable_seed(seed, "mix", step, example_id)).random() < settings.offline_prob


def conversation(role: str, text: str) -> list[dict]:
    return [{"role": role, "content": text}]


class PairMaker:
    """Makes one step's DPO rows from raw examples with the current policy and a judge."""

    def __init__(
        self,
        processor,
        settings: OnlineSettings,
        judge=None,
        rejected: str = "external",
        seed: int = 0,
        scenes: dict[str, dict] | None = None,
    ):
        """``judge``: a mmalign.judges Judge (``compare``); ``scenes``: scene id -> Scene.to_dict() for the
        world's exact judge (the pair's meta names its scene), None for real data."""
        if settings.mode in ("online", "mixed") and judge is None:
            raise ValueError(f"online mode {settings.mode!r} needs a judge")
        self.processor, self.settings, self.judge, self.rejected, self.seed = processor, settings, judge, rejected, seed
        self.scenes = scenes or {}
        self.counts: Counter = Counter()
        self.verdicts: list[dict] = []  # every annotator verdict's status and reason (its failure budget)
        self.generation_seconds = 0.0
        self._snapshot: dict[str, torch.Tensor] | None = None

    # ------------------------------------------------------------------ policy snapshots (refresh_every)

    def maybe_refresh(self, model, step: int) -> None:
        if self.settings.refresh_every > 1 and step % self.settings.refresh_every == 0:
            self._snapshot = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    @contextmanager
    def sampling_policy(self, model):
        """The policy that samples: the current one, or the last snapshot's trainable weights swapped in."""
        was_training = model.training
        model.eval()
        current = None
        if self._snapshot is not None:
            params = dict(model.named_parameters())
            current = {n: params[n].detach().clone() for n in self._snapshot}
            with torch.no_grad():
                for n, value in self._snapshot.items():
                    params[n].copy_(value)
        try:
            yield model
        finally:
            if current is not None:
                params = dict(model.named_parameters())
                with torch.no_grad():
                    for n, value in current.items():
                        params[n].copy_(value)
            model.train(was_training)

    # ------------------------------------------------------------------------------- pair making

    def make_rows(self, model, examples: list[dict], step: int) -> list[dict]:
        """TRL preference rows (image, prompt, chosen, rejected) for one step."""
        self.maybe_refresh(model, step)
        offline, online = [], []
        for ex in examples:
            (offline if uses_offline_pair(self.settings, self.seed, step, ex["pair_id"]) else online).append(ex)
        rows = [self._row(ex, ex["chosen_text"], ex["rejected_text"]) for ex in offline]
        self.counts["offline_pairs"] += len(offline)
        if online:
            start = time.time()
            with self.sampling_policy(model):
                rows += self.online_rows(model, online, step)
            self.generation_seconds += time.time() - start
        return rows

    def _row(self, ex: dict, chosen: str, rejected: str) -> dict:
        return {
            "image": ex["image"],
            "prompt": conversation("user", ex["prompt_text"]),
            "chosen": conversation("assistant", chosen),
            "rejected": conversation("assistant", rejected),
        }

    def online_rows(self, model, examples: list[dict], step: int) -> list[dict]:
        """Online-DPO's pairs: two samples per prompt, ranked by the judge (online BDHS overrides this)."""
        images = [ex["image"] for ex in examples for _ in range(2)]
        prompts = [ex["prompt_text"] for ex in examples for _ in range(2)]
        samples = generate(
            model,
            self.processor,
            images,
            prompts,
            max_new_tokens=self.settings.max_new_tokens,
            batch_size=len(prompts),
            do_sample=True,
            temperature=self.settings.temperature,
            seed=stable_seed(self.seed, "sample", step, bits=32),
        )
        pairs = [(samples[2 * i], samples[2 * i + 1]) for i in range(len(examples))]
        distinct = [(ex, pair) for ex, pair in zip(examples, pairs) if pair[0].strip() != pair[1].strip()]
        self.counts["dropped_identical_samples"] += len(examples) - len(distinct)
        verdicts = self.judge.compare([self._request(ex, pair) for ex, pair in distinct])
        rows = []
        for (ex, pair), verdict in zip(distinct, verdicts):
            self.verdicts.append({"status": verdict.status, "reason": verdict.reason})
            if verdict.preferred is None:  # a tie carries no preference; a failure is never guessed
                self.counts["dropped_tie" if verdict.status == "tie" else "dropped_judge_failed"] += 1
                continue
            self.counts["online_pairs"] += 1
            rows.append(self._row(ex, pair[verdict.preferred], pair[1 - verdict.preferred]))
        return rows

    def _request(self, ex: dict, pair: tuple[str, str]):
        scene_id = json.loads(ex["meta"] or "{}").get("scene")
        return PairRequest(
            id=ex["pair_id"],
            prompt=ex["prompt_text"],
            responses=pair,
            image=ex.get("image_path"),
            scene=self.scenes.get(scene_id),
            reference=ex["chosen_text"],
        )

    def log_fields(self) -> dict:
        return {
            **{f"pairs/{k}": v for k, v in sorted(self.counts.items())},
            "pairs/generation_seconds": round(self.generation_seconds, 3),
        }


def online_dataset(pairs_path, max_pairs: int | None, seed: int):
    """Raw examples for online training: the offline pair's texts plus what the judge needs (meta)."""
    from datasets import Dataset
    from datasets import Image as ImageFeature

    frame = read_pairs(pairs_path)
    if max_pairs is not None and len(frame) > max_pairs:
        frame = frame.sample(n=max_pairs, random_state=seed)
    rows = [
        {
            "image": row.image,
            "image_path": row.image,  # an LLM judge is shown the file
            # TRL's signature columns; the rows TRL sees are rebuilt each step by PairMaker
            "prompt": conversation("user", row.prompt),
            "chosen": conversation("assistant", row.chosen),
            "rejected": conversation("assistant", row.rejected),
            "pair_id": str(row.id),
            "prompt_text": row.prompt,
            "chosen_text": row.chosen,
            "rejected_text": row.rejected,
            "meta": row.meta if isinstance(row.meta, str) else "{}",
        }
        for row in frame.itertuples()
    ]
    return Dataset.from_list(rows).cast_column("image", ImageFeature())


def raw_collator(examples: list[dict]) -> dict:
    """Pass raw examples through: pairs are made in ``training_step`` with the policy of that very step."""
    return {"raw_examples": examples}


def online_trainer_class():
    """A DPOTrainer subclass (built lazily so importing this module does not import TRL)."""
    from trl import DPOTrainer
    from trl.trainer.dpo_trainer import DataCollatorForVisionPreference

    class OnlinePairsDPOTrainer(DPOTrainer):
        def __init__(self, *args, pair_maker: PairMaker, **kwargs):
            super().__init__(*args, data_collator=raw_collator, **kwargs)
            self.pair_maker = pair_maker
            self.vision_collator = DataCollatorForVisionPreference(processor=self.processing_class, max_length=None)
            self.answer_end = frame_for_training(self.processing_class)  # as train_dpo frames offline rows

        def training_step(self, model, inputs, num_items_in_batch=None):
            rows = self.pair_maker.make_rows(
                self.accelerator.unwrap_model(model), inputs["raw_examples"], self.state.global_step
            )
            if not rows:  # every pair of this step was dropped: no gradient, counted
                self.pair_maker.counts["skipped_steps"] += 1
                return torch.zeros((), device=self.args.device)
            rows = end_answers(rows, self.answer_end)
            return super().training_step(model, self.vision_collator(rows), num_items_in_batch)

        def log(self, logs: dict, start_time: float | None = None) -> None:
            if "loss" in logs:  # training logs carry the pair counts so far
                logs.update(self.pair_maker.log_fields())
            super().log(logs, start_time)

    return OnlinePairsDPOTrainer


# ------------------------------------------------------------------ the method hooks (mmalign.train.dpo)


def build_dataset(pairs_path, settings):
    return online_dataset(pairs_path, settings.max_pairs, settings.seed)


def build_trainer(common: dict, settings, judge=None, scenes=None, pair_maker_class=PairMaker):
    maker = pair_maker_class(
        common["processing_class"],
        OnlineSettings(mode=get(settings.method).online, **settings.online),
        judge=judge,
        rejected=settings.rejected,
        seed=settings.seed,
        scenes=scenes,
    )
    return online_trainer_class()(**common, pair_maker=maker)


class OnlineBudgetError(RuntimeError):
    """An online run that trained on too few online pairs to be what its method says."""


def check_online_budget(maker: PairMaker, steps: int, what: str) -> dict:
    """The run's realized shares; raises OnlineBudgetError (or JudgeBudgetError) above a budget."""
    settings, counts = maker.settings, maker.counts
    if maker.judge is not None and maker.verdicts:
        check_budget(getattr(maker.judge, "name", maker.judge.judge_id), maker.judge.settings, maker.verdicts, what)
    trained = counts["online_pairs"] + counts["offline_pairs"]
    skipped_share = counts["skipped_steps"] / max(1, steps)
    online_share = counts["online_pairs"] / trained if trained else 0.0
    floor = settings.min_online_share
    if floor is None:
        floor = settings.expected_online_share() / 2
    problems = []
    if skipped_share > settings.max_skipped_step_share:
        problems.append(
            f"{counts['skipped_steps']} of {steps} steps had no pair (budget {settings.max_skipped_step_share:.0%})"
        )
    if online_share < floor:
        problems.append(
            f"online pairs are {online_share:.0%} of the {trained} trained on (at least {floor:.0%} needed; the "
            f"method asks for {settings.expected_online_share():.0%})"
        )
    if problems:
        dropped = {k: v for k, v in sorted(counts.items()) if k.startswith("dropped")}
        raise OnlineBudgetError(f"{what}: {'; '.join(problems)}; dropped pairs by reason: {dropped}")
    return {"online_share": round(online_share, 4), "skipped_step_share": round(skipped_share, 4)}


def run_metrics(trainer, seconds: float) -> dict:
    shares = check_online_budget(
        trainer.pair_maker, trainer.state.global_step, f"online run {Path(trainer.args.output_dir).parent.name}"
    )
    return {
        "online": {**trainer.pair_maker.log_fields(), **shares},
        "generation_share": round(trainer.pair_maker.generation_seconds / seconds, 4),
    }
