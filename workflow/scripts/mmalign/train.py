"""Offline preference training: TRL's ``DPOTrainer`` with a PEFT LoRA adapter on the language model
and the multimodal projector trained in full at its own learning rate (paper-digest.md §1.2).

The loss is configuration: ``loss_type`` is passed to TRL as is (``sigmoid`` = DPO, ``ipo`` = IPO,
``hinge`` = SLiC), optionally combined with ``sft`` through ``loss_weights``. With PEFT the reference
policy is the same model with its adapter disabled, so no second copy is held in memory.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .launch import per_process_batch, save_adapter, world_size
from .schema import read_pairs

log = logging.getLogger(__name__)

# LoRA goes on the language model's linear layers only (the vision tower has q/k/v projections too).
LM_LINEAR_LAYERS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
PROJECTOR = "multi_modal_projector"


@dataclass
class DPOSettings:
    """One offline variant's training settings (config ``variants.<name>``)."""

    loss_type: list[str] = field(default_factory=lambda: ["sigmoid"])
    loss_weights: list[float] | None = None
    beta: float = 0.1
    learning_rate: float = 5e-4
    projector_learning_rate: float = 1e-4
    epochs: float = 1.0
    batch_size: int = 16
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    max_pairs: int | None = None
    rejected: str = "external"  # external | policy | both (Avg-DPO, Eq. 5, gamma 0.5)
    seed: int = 0
    warmup_ratio: float = 0.1
    logging_steps: int = 5

    def __post_init__(self):
        if self.rejected not in ("external", "policy", "both"):
            raise ValueError("rejected must be 'external', 'policy' or 'both'")
        if self.loss_weights is not None and len(self.loss_weights) != len(self.loss_type):
            raise ValueError("loss_weights needs one weight per entry of loss_type")

    @classmethod
    def from_spec(cls, spec: dict) -> "DPOSettings":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in spec.items() if k in known})


def rejected_answers(row, mode: str) -> list[str]:
    """Which rejected answers a pair contributes. 'both' is Avg-DPO (Eq. 5) with gamma = 0.5: the pair enters
    once with the external and once with the policy-derived rejected answer, so the mean loss over the data is
    0.5 L(y+, y-) + 0.5 L(y+, y~-), the average POVID's public code takes (two rows instead of one pair)."""
    if mode == "external":
        return [row.rejected]
    if not row.rejected_policy:
        raise ValueError(f"pair {row.id!r} has no policy-derived rejected answer (rejected: {mode} needs a BDHS pair set)")
    return [row.rejected_policy] if mode == "policy" else [row.rejected, row.rejected_policy]


def preference_dataset(pairs_path: str | Path, max_pairs: int | None, seed: int, rejected: str = "external"):
    """The pair table as a TRL vision preference dataset (conversational prompt/chosen/rejected + image)."""
    from datasets import Dataset, Image as ImageFeature

    frame = read_pairs(pairs_path)
    if max_pairs is not None and len(frame) > max_pairs:
        frame = frame.sample(n=max_pairs, random_state=seed)
    rows = [
        {
            "image": row.image,
            "prompt": [{"role": "user", "content": row.prompt}],
            "chosen": [{"role": "assistant", "content": row.chosen}],
            "rejected": [{"role": "assistant", "content": answer}],
        }
        for row in frame.itertuples()
        for answer in rejected_answers(row, rejected)
    ]
    return Dataset.from_list(rows).cast_column("image", ImageFeature())


def attach_lora(model, settings: DPOSettings):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=LM_LINEAR_LAYERS,
        modules_to_save=[PROJECTOR],
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def optimizer_groups(model, settings: DPOSettings) -> torch.optim.Optimizer:
    """AdamW with two learning rates: LoRA weights and the (fully trained) projector."""
    projector, lora = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (projector if PROJECTOR in name else lora).append(param)
    if not lora or not projector:
        raise RuntimeError(f"expected trainable LoRA and projector parameters, got {len(lora)} and {len(projector)}")
    return torch.optim.AdamW(
        [{"params": lora, "lr": settings.learning_rate}, {"params": projector, "lr": settings.projector_learning_rate}]
    )


def train_dpo(model_dir: str | Path, pairs_path: str | Path, out_dir: str | Path, settings: DPOSettings, use_cpu: bool = True) -> dict:
    """Train one offline variant; writes ``adapter/``, ``train_log.jsonl`` and returns the metrics."""
    from transformers import AutoModelForImageTextToText, AutoProcessor, set_seed
    from trl import DPOConfig, DPOTrainer

    set_seed(settings.seed)
    out_dir = Path(out_dir)
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    model = attach_lora(model, settings)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    dataset = preference_dataset(pairs_path, settings.max_pairs, settings.seed, settings.rejected)
    log.info("DPO on %d pairs, %d trainable parameters, loss %s", len(dataset), trainable, settings.loss_type)
    args = DPOConfig(
        output_dir=str(out_dir / "_work"),
        # batch_size is the global batch: each of several processes (mmalign.launch) takes its share
        per_device_train_batch_size=per_process_batch(settings.batch_size, world_size()),
        num_train_epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=settings.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        beta=settings.beta,
        loss_type=settings.loss_type,
        loss_weights=settings.loss_weights,
        logging_steps=settings.logging_steps,
        save_strategy="no",
        report_to="none",
        use_cpu=use_cpu,
        bf16=False,
        gradient_checkpointing=False,
        max_length=None,  # never truncate image tokens (TRL's advice for VLMs)
        seed=settings.seed,
        dataloader_num_workers=0,
    )
    trainer = DPOTrainer(
        model=model,
        ref_model=None,  # PEFT: the reference is the model with its adapter disabled
        args=args,
        train_dataset=dataset,
        processing_class=processor,
        optimizers=(optimizer_groups(model, settings), None),
    )
    start = time.time()
    result = trainer.train()
    seconds = time.time() - start
    save_adapter(trainer, model, out_dir / "adapter")
    if trainer.is_world_process_zero():
        with open(out_dir / "train_log.jsonl", "w") as fh:
            for entry in trainer.state.log_history:
                fh.write(json.dumps(entry) + "\n")
    last = next((e for e in reversed(trainer.state.log_history) if "loss" in e), {})
    import shutil

    shutil.rmtree(out_dir / "_work", ignore_errors=True)
    return {
        "pairs": len(dataset),
        "steps": result.global_step,
        "train_loss": result.training_loss,
        "train_seconds": round(seconds, 2),
        "pairs_per_second": round(len(dataset) * settings.epochs / seconds, 3),
        "trainable_parameters": trainable,
        "last_logged": last,
        "settings": asdict(settings),
    }
