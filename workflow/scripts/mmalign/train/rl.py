"""RL-based alignment (paper App. A): RLOO and PPO on a LLaVA-family policy, rewarded by a reward model (RM).

* RLOO is TRL's ``RLOOTrainer`` as is; PPO is ``mmalign.train.ppo.PPOTrainer``, a subclass that keeps its
  rollout machinery and adds a value head, per-token KL rewards and GAE.
* The policy is the base model with a fresh LoRA adapter on the language model's linear layers; the base (the
  projector included) stays constant ("constant base model parameters while training LoRA adapters"). The
  reference for the KL term is the same model with the adapter disabled.
* Prompts and images are the pair table's (POVID); its answers are used only for the reward statistics.
* The RM is a callable ``score(images, prompts, answers) -> list[float]`` passed in by the caller, e.g.
  ``functools.partial(mmalign.reward.model.reward_scores, rm, rm_processor)``. Its scores are normalised with a mean
  and std computed over the alignment dataset before training (the paper's recipe).
* Instability is a result (``mmalign.train.stability``): a run that collapses or diverges ends with a "not stable"
  verdict in its metrics, never an uncaught crash.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from mmalign.adapters import LM_LINEAR_LAYERS
from mmalign.compute import resolve_here
from mmalign.schema import read_pairs

from .chat_format import frame_for_training, message_text
from .rl_settings import RLSettings
from .stability import ENTROPY, KL, LENGTH, REWARD, stability_verdict

log = logging.getLogger(__name__)


def rl_lora_config(settings: RLSettings):
    """LoRA on the language model's linear layers only; unlike DPO the projector is not trained (frozen base)."""
    from peft import LoraConfig

    return LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=LM_LINEAR_LAYERS,
        task_type="CAUSAL_LM",
    )


# ----------------------------------------------------------------------------------------------- data


def prompt_dataset(pairs_path: str | Path, max_prompts: int | None = None, seed: int = 0):
    """The pair table's (image, prompt) rows as a TRL vision prompt dataset. The prompt is conversational with
    string content: TRL inserts the image placeholder before the text (as ``mmalign.models.user_message`` does)."""
    from datasets import Dataset
    from datasets import Image as ImageFeature

    frame = read_pairs(pairs_path)
    if max_prompts is not None and len(frame) > max_prompts:
        frame = frame.sample(n=max_prompts, random_state=seed)
    rows = [
        {"id": row.id, "image": row.image, "prompt": [{"role": "user", "content": row.prompt}]}
        for row in frame.itertuples()
    ]
    return Dataset.from_list(rows).cast_column("image", ImageFeature())


# -------------------------------------------------------------------------------------------- rewards


def reward_function(score, mean: float = 0.0, std: float = 1.0):
    """A TRL reward callable: the RM's score of (image, prompt, completion), normalised as (s - mean) / std.
    The raw score's batch mean is logged too (``rm_raw``), so a run's log shows the RM's own scale."""

    def rm(prompts, completions, image=None, log_metric=None, **_columns) -> list[float]:
        if image is None:
            raise ValueError("the reward model needs the dataset's image column")
        raw = score(list(image), [message_text(p) for p in prompts], [message_text(c) for c in completions])
        if log_metric is not None and np.isfinite(np.asarray(raw, dtype=float)).any():
            log_metric("rm_raw", float(np.nanmean(raw)))
        return [(float(s) - mean) / std for s in raw]

    return rm


def reward_statistics(score, table, chunk: int = 64) -> tuple[float, float]:
    """Mean and (population) std of the RM's scores over the alignment dataset, computed before training.

    What is scored: every pair's chosen *and* rejected answer with its image and prompt. The policy's own samples
    would need the policy before training (and a sampling pass over the dataset); the dataset's answers span good
    and bad responses to the same prompts, which is the range the policy's answers move in. ``table``: a pair
    table path or frame."""
    from PIL import Image

    frame = read_pairs(table) if isinstance(table, (str, Path)) else table
    scores: list[float] = []
    for start in range(0, len(frame), chunk):
        rows = frame.iloc[start : start + chunk]
        images = [Image.open(path).convert("RGB") for path in rows["image"]]
        for column in ("chosen", "rejected"):
            scores += [float(s) for s in score(images, list(rows["prompt"]), list(rows[column]))]
    values = np.asarray(scores, dtype=float)
    std = float(values.std())
    if not np.isfinite(values).all() or std == 0:
        raise ValueError(f"reward statistics unusable: std {std}, {int((~np.isfinite(values)).sum())} non-finite")
    return float(values.mean()), std


# ------------------------------------------------------------------------------------------- training


def canonical_log(history: list[dict]) -> list[dict]:
    """Give the four quantities the stability rule reads stable names (in place): TRL already logs ``reward``,
    ``kl`` and ``entropy``; the mean completion length becomes ``response_length``."""
    for entry in history:
        if "completions/mean_length" in entry:
            entry[LENGTH] = entry["completions/mean_length"]
    return history


def lora_changed(model) -> bool:
    return any(bool(p.detach().abs().sum()) for n, p in model.named_parameters() if "lora_B" in n)


def weights_finite(model) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters() if p.requires_grad)


def numerical_failure(error: Exception, model) -> bool:
    """A training error that is divergence, not a bug: non-finite weights, or sampling from NaN/inf
    probabilities (torch.multinomial's 'probability tensor contains either inf, nan or element < 0')."""
    return not weights_finite(model) or re.search(r"\b(nan|inf)\b", str(error).lower()) is not None


def rl_config(settings: RLSettings, out_dir: Path, use_cpu: bool, compute=None):
    """TRL's RLOOConfig; ``compute``: the resolved precision and checkpointing (default: the device's auto
    request, so TRL's own defaults, checkpointing on, never apply)."""
    from trl import RLOOConfig

    compute = compute or resolve_here(None, use_cpu=use_cpu)

    return RLOOConfig(
        output_dir=str(out_dir / "checkpoints"),
        per_device_train_batch_size=settings.batch_size // settings.gradient_accumulation_steps,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps or -1,
        learning_rate=settings.learning_rate,
        lr_scheduler_type=settings.lr_scheduler_type,
        max_grad_norm=settings.max_grad_norm,
        num_generations=settings.num_generations,
        temperature=settings.temperature,
        max_completion_length=settings.max_completion_length,
        beta=settings.beta,
        num_iterations=settings.ppo_epochs,
        epsilon=settings.clip_range,  # PPO's clip range; RLOO clips its sequence ratio with it too
        disable_dropout=True,
        logging_steps=settings.logging_steps,
        save_strategy="no",  # RL runs are not resumable here (see the report of this module)
        report_to="none",
        use_cpu=use_cpu,
        **compute.trainer_kwargs(),  # bf16 / fp16 autocast, gradient checkpointing
        seed=settings.seed,
        dataloader_num_workers=0,
    )


def build_trainer(model, processor, dataset, reward, settings: RLSettings, args):
    from trl import RLOOTrainer

    common = dict(
        model=model,
        reward_funcs=reward,
        args=args,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=rl_lora_config(settings),  # the trainer wraps the model; reference = adapter disabled
    )
    if settings.method == "rloo":
        return RLOOTrainer(**common)
    from .ppo import PPOTrainer

    ppo = {k: getattr(settings, k) for k in ("vf_coef", "gamma", "gae_lambda", "cliprange_value")}
    return PPOTrainer(**common, ppo=ppo)


def first_last(history: list[dict], key: str) -> tuple[float | None, float | None]:
    values = [e[key] for e in history if isinstance(e.get(key), (int, float))]
    return (values[0], values[-1]) if values else (None, None)


def train_rl(
    model_dir: str | Path,
    pairs_path: str | Path,
    out_dir: str | Path,
    settings: RLSettings,
    score,
    use_cpu: bool = True,
    compute: dict | None = None,
) -> dict:
    """Train one RL variant; writes ``train_log.jsonl``, ``adapter/`` (a PEFT adapter for the base model) and, for
    PPO, ``value_head.pt`` beside it (the value head is not part of the policy), and returns the metrics.

    ``score(images, prompts, answers) -> list[float]`` is the RM. No adapter is written when training diverged
    (a numerical error, or non-finite weights) or when an unstable run never changed the LoRA weights; a *stable*
    run whose adapter never changed raises ``UnchangedAdapterError`` (as DPO does): its table row would silently
    be the base model. A numerical error during training is caught and becomes a "not stable" verdict."""
    from transformers import AutoModelForImageTextToText, AutoProcessor, set_seed

    set_seed(settings.seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    processor = AutoProcessor.from_pretrained(model_dir)
    frame_for_training(processor)  # prompts start with BOS as at inference; the policy writes its own EOS
    processor.tokenizer.padding_side = "left"  # TRL generates from left-padded prompts
    resolved = resolve_here(compute, use_cpu=use_cpu)  # precision, attention: the config's compute section
    model = AutoModelForImageTextToText.from_pretrained(model_dir, **resolved.model_kwargs())
    dataset = prompt_dataset(pairs_path, settings.max_prompts, settings.seed)
    mean, std = reward_statistics(score, pairs_path) if settings.normalise_rewards else (0.0, 1.0)
    log.info("%s on %d prompts; RM statistics mean %.4g std %.4g", settings.method, len(dataset), mean, std)
    args = rl_config(settings, out_dir, use_cpu, resolved)
    trainer = build_trainer(model, processor, dataset, reward_function(score, mean, std), settings, args)
    error = None
    start = time.time()
    try:
        trainer.train()
    except (RuntimeError, ValueError, FloatingPointError) as exc:
        if not numerical_failure(exc, trainer.model):
            raise
        error = f"{type(exc).__name__}: {exc}"
        log.warning("%s diverged at step %d: %s", settings.method, trainer.state.global_step, error)
    seconds = time.time() - start
    history = canonical_log(trainer.state.log_history)
    with open(out_dir / "train_log.jsonl", "w") as fh:
        for entry in history:
            fh.write(json.dumps(entry) + "\n")
    verdict = stability_verdict(history, settings.rule, settings.max_completion_length)
    if error or not weights_finite(trainer.model):
        verdict["stable"] = False
        verdict["reasons"].insert(0, f"training diverged: {error or 'non-finite weights'}")
    adapter = None if error else publish(trainer, settings, out_dir, verdict)
    steps = trainer.state.global_step
    samples = math.ceil(steps * settings.batch_size / settings.ppo_epochs)  # a rollout serves ppo_epochs steps
    return {
        "method": settings.method,
        "prompts": len(dataset),
        "steps": steps,
        "samples": samples,
        "samples_per_second": round(samples / seconds, 3) if seconds else None,
        "train_seconds": round(seconds, 2),
        "reward_mean_first": first_last(history, REWARD)[0],
        "reward_mean_last": first_last(history, REWARD)[1],
        "kl_last": first_last(history, KL)[1],
        "response_length_last": first_last(history, LENGTH)[1],
        "entropy_last": first_last(history, ENTROPY)[1],
        "reward_statistics": {"mean": mean, "std": std},
        "stability": verdict,
        "stable": verdict["stable"],
        "error": error,
        "adapter": adapter,
        "settings": asdict(settings),
    }


def publish(trainer, settings: RLSettings, out_dir: Path, verdict: dict) -> str | None:
    """Save the adapter (and PPO's value head) unless the run has nothing to publish; the path, or None."""
    from .dpo import check_adapter_changed

    model = trainer.model
    if not weights_finite(model):
        return None
    if not lora_changed(model):
        if verdict["stable"]:
            check_adapter_changed(model, settings, out_dir)  # raises UnchangedAdapterError
        verdict["reasons"].append("no adapter: the LoRA weights never changed")
        return None
    model.save_pretrained(out_dir / "adapter")
    if hasattr(trainer, "value_head"):
        torch.save(trainer.value_head.state_dict(), out_dir / "value_head.pt")
    return str(out_dir / "adapter")


def zero_adapter(model) -> None:
    """LoRA B matrices to zero: the adapter of a diverged run becomes the base model itself, published only so that
    the workflow's downstream jobs have their input; its numbers are shown as "policy training not stable"."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.zero_()


def train_with_reward_model(model_dir, pairs_path, out_dir, spec: dict, reward_model_dir, use_cpu: bool = True) -> dict:
    """The workflow's entry (rule ``train``, methods rloo and ppo): the variant's RL settings from its spec, its
    reward model loaded as the scorer, then ``train_rl``. A run that left no adapter (it diverged) publishes a
    zeroed one beside its "not stable" verdict, so the study goes on and its tables say what happened."""
    from functools import partial

    from mmalign.reward.model import load_reward_model, reward_scores

    settings = RLSettings.from_variant(spec)
    compute = spec.get("compute")
    reward_model, reward_processor = load_reward_model(model_dir, reward_model_dir, compute)
    score = partial(reward_scores, reward_model, reward_processor)
    metrics = train_rl(model_dir, pairs_path, out_dir, settings, score, use_cpu=use_cpu, compute=compute)
    adapter = Path(out_dir) / "adapter"
    if metrics["adapter"] is None:
        from peft import get_peft_model
        from transformers import AutoModelForImageTextToText

        base = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
        policy = get_peft_model(base, rl_lora_config(settings))
        zero_adapter(policy)
        policy.save_pretrained(adapter)
        metrics["adapter"] = "zeroed (the base model): nothing trained was publishable"
    (adapter / "stability.json").write_text(json.dumps(metrics["stability"], indent=2, default=str) + "\n")
    return {**metrics, "reward_model": str(reward_model_dir)}
