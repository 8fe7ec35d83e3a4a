"""Reward-model training: TRL's ``RewardTrainer`` with images.

TRL's trainer is text-only (its collator reads ``chosen_ids`` / ``rejected_ids``, its ``max_length`` of 1024
would drop every LLaVA-1.6 sample, its signature columns drop the image). ``VisionRewardTrainer`` replaces only
the dataset preparation (the rows stay raw: image path, prompt, chosen, rejected) and the collator (the
processor renders both conversations with the image and expands the image tokens, untruncated); TRL's
``compute_loss`` is kept as is: the Bradley-Terry loss ``-logsigmoid(r_c - r_r)`` (the paper's Eq. 1) over a
batch whose first half is the chosen and second half the rejected rows, and its logged ``accuracy``.

A trained RM is published only if it ranks its own training pairs better than ``min_train_accuracy``: an RM at
chance there has learnt nothing, and an RL job rewarded by it would optimise noise while looking like it ran.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from trl import RewardTrainer

from mmalign.adapters import save_adapter
from mmalign.compute import micro_batches, resolve_here
from mmalign.schema import read_pairs

from .accuracy import open_image, reward_accuracy
from .data import reward_rows, split_by_image
from .model import attach_reward_lora, encode, render

log = logging.getLogger(__name__)


@dataclass
class RewardSettings:
    """One reward model's training settings. Defaults are the paper's 7B RM (Appendix A) where it gives them."""

    learning_rate: float = 2e-5  # Appendix A, the 7B reward model
    steps: int = 4000  # optimizer steps (the data repeats when a pass is shorter)
    warmup_ratio: float = 0.03  # share of ``steps``; then constant (``constant_with_warmup``)
    batch_size: int = 32  # pairs per step (twice as many sequences: chosen and rejected)
    per_device_batch_size: int | None = None  # pairs per forward pass; gradient accumulation makes up batch_size
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    seed: int = 0  # the head's initialisation, the data order and the held-out split
    logging_steps: int = 10
    # pairs held out by image (mmalign.reward.data.split_by_image); 0 trains on every pair
    heldout_share: float = 0.1
    # an RM below this accuracy on its own training pairs is at chance: it is not published (RewardModelAtChanceError)
    min_train_accuracy: float = 0.6
    score_batch_size: int = 8  # pairs per forward pass when measuring accuracy


class RewardModelAtChanceError(RuntimeError):
    """A trained reward model ranks its own training pairs no better than the bound: nothing is published."""


@dataclass
class VisionPreferenceCollator:
    """Raw pair rows -> one batch: chosen conversations first, then rejected, each with its image."""

    processor: object

    def __call__(self, rows: list[dict]) -> dict:
        images = [open_image(row["image"]) for row in rows]
        chosen = [render(self.processor, row["prompt"], row["chosen"]) for row in rows]
        rejected = [render(self.processor, row["prompt"], row["rejected"]) for row in rows]
        return dict(encode(self.processor, images + images, chosen + rejected))


class VisionRewardTrainer(RewardTrainer):
    """``RewardTrainer`` on image pairs. ``processor`` renders and encodes; TRL gets its tokenizer (it sets the
    pad token on it and reads the vocabulary, which a processor does not expose)."""

    def __init__(self, model, args, train_dataset, processor, **kwargs):
        self.processor = processor
        super().__init__(
            model=model,
            args=args,
            train_dataset=train_dataset,
            processing_class=processor.tokenizer,
            data_collator=VisionPreferenceCollator(processor),
            **kwargs,
        )

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        """Rows stay raw (the collator encodes them with their images); no length filter can drop a sample."""
        missing = {"image", "prompt", "chosen", "rejected"} - set(dataset.column_names)
        if missing:
            raise ValueError(f"{dataset_name} dataset lacks the columns {sorted(missing)}")
        return dataset


def reward_config(out_dir: Path, settings: RewardSettings, use_cpu: bool, compute=None):
    """TRL's RewardConfig for one process; ``compute``: the resolved precision and checkpointing (default: the
    device's auto request, so TRL's own defaults, checkpointing on, never apply)."""
    from trl import RewardConfig

    compute = compute or resolve_here(None, use_cpu=use_cpu)

    per_device, accumulation = micro_batches(settings.batch_size, settings.per_device_batch_size, 1)
    return RewardConfig(
        output_dir=str(out_dir / "checkpoints"),
        max_steps=settings.steps,
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=accumulation,
        learning_rate=settings.learning_rate,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=settings.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        logging_steps=settings.logging_steps,
        save_strategy="no",
        report_to="none",
        use_cpu=use_cpu,
        **compute.trainer_kwargs(),  # bf16 / fp16 autocast, gradient checkpointing
        max_length=None,  # never filter or truncate: image tokens are most of a LLaVA-1.6 sequence
        remove_unused_columns=False,  # the collator reads the raw columns (the image path included)
        seed=settings.seed,
        dataloader_num_workers=0,
    )


def train_reward_model(
    model_dir: str | Path,
    pairs_path: str | Path,
    out_dir: str | Path,
    settings: RewardSettings,
    use_cpu: bool = True,
    compute: dict | None = None,
) -> dict:
    """Train an RM on the training split of a pair table; write ``adapter/`` (LoRA + head), ``train_log.jsonl``,
    ``heldout_ids.json`` and return the metrics. Raises RewardModelAtChanceError (publishing nothing) when the
    RM's accuracy on its own training pairs is below ``settings.min_train_accuracy``."""
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoProcessor, set_seed

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    set_seed(settings.seed)  # before loading: the head is initialised at random
    train_table, heldout_table = split_by_image(read_pairs(pairs_path), settings.heldout_share, settings.seed)
    rows, manifest = reward_rows(train_table, source=str(pairs_path))
    if not rows:
        raise ValueError(f"{pairs_path}: no usable training pair (dropped: {dict(manifest.dropped)})")
    resolved = resolve_here(compute, use_cpu=use_cpu)  # before the model loads: a bad request fails now
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1, **resolved.model_kwargs())
    model = attach_reward_lora(model, settings.lora_r, settings.lora_alpha, settings.lora_dropout)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info(
        "reward model on %d pairs (%d held out), %d trainable parameters", len(rows), len(heldout_table), trainable
    )
    trainer = VisionRewardTrainer(
        model=model,
        args=reward_config(out_dir, settings, use_cpu, resolved),
        train_dataset=Dataset.from_list(rows),
        processor=processor,
    )
    start = time.time()
    result = trainer.train()
    seconds = time.time() - start
    with open(out_dir / "train_log.jsonl", "w") as fh:
        for entry in trainer.state.log_history:
            fh.write(json.dumps(entry) + "\n")

    model.eval()
    train_accuracy = reward_accuracy(model, processor, train_table, settings.score_batch_size)
    if not train_accuracy["accuracy"] >= settings.min_train_accuracy:
        raise RewardModelAtChanceError(
            f"reward model {out_dir} trained on {pairs_path}: accuracy {train_accuracy['accuracy']:.3f} on its own "
            f"{train_accuracy['pairs']} training pairs is below the bound {settings.min_train_accuracy} "
            "(min_train_accuracy); it is not published, before any RL job uses it"
        )
    heldout_accuracy = (
        reward_accuracy(model, processor, heldout_table, settings.score_batch_size) if len(heldout_table) else None
    )
    save_adapter(trainer, model, out_dir / "adapter")
    (out_dir / "heldout_ids.json").write_text(json.dumps(sorted(heldout_table["id"].tolist())) + "\n")
    return {
        "pairs": len(rows),
        "heldout_pairs": len(heldout_table),
        "dropped": dict(manifest.dropped),
        "steps": result.global_step,
        "train_loss": result.training_loss,
        "train_seconds": round(seconds, 2),
        "pairs_per_second": round(result.global_step * settings.batch_size / seconds, 3),
        "trainable_parameters": trainable,
        "train_accuracy": train_accuracy,
        "heldout_accuracy": heldout_accuracy,
        "settings": asdict(settings),
    }
