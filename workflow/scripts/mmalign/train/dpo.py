"""Preference training: TRL's ``DPOTrainer`` with a PEFT LoRA adapter on the language model and the
multimodal projector trained in full at its own learning rate (the paper's recipe, Appendix A).

The loss is configuration: ``loss_type`` is passed to TRL as is (``sigmoid`` = DPO, ``ipo`` = IPO,
``hinge`` = SLiC), optionally combined with ``sft`` through ``loss_weights``. With PEFT the reference
policy is the same model with its adapter disabled, so no second copy is held in memory.

``method`` (``mmalign.train.methods``) picks where pairs come from. Plain DPO is this module; every other method
names a module with the same three hooks, which ``train_dpo`` calls and nothing else:

* ``build_dataset(pairs_path, settings)``: the rows the trainer iterates over;
* ``build_trainer(common, settings, judge, scenes)``: the TRL trainer (``common``: its keyword arguments);
* ``run_metrics(trainer, seconds)``: what the method adds to ``train_metrics.json``;

and ``RAW_ROWS``: whether the trainer reads the dataset's own columns (TRL must then keep them).

Training checkpoints every ``checkpoint_steps`` into ``<out_dir>/checkpoints``; a rerun of a killed job resumes
from the last one (when it was written for the same settings) and ends where the uninterrupted run ends.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import sys
import time
from dataclasses import asdict
from importlib import import_module
from pathlib import Path

import torch

from mmalign.adapters import save_adapter
from mmalign.compute import micro_batches, resolve_here
from mmalign.schema import validate_pair_table

from .arithmetic import StepArithmetic
from .batching import group_by_length
from .chat_format import end_answers, frame_for_training
from .lora import PROJECTOR, attach_lora
from .methods import get, table_rejected_columns
from .ranks import world_size
from .reference import precompute_for_run, precomputed_reference_trainer_class, reference_by_disabled_adapter
from .rows import preference_dataset
from .settings import DPOSettings

log = logging.getLogger(__name__)

RAW_ROWS = False  # plain DPO: TRL's own collator reads its signature columns


def natural_steps(rows: int, settings: DPOSettings) -> int:
    """Optimizer steps that `epochs` passes over `rows` training rows take (the last batch may be short)."""
    return max(1, math.ceil(math.ceil(rows / settings.batch_size) * settings.epochs))


def planned_steps(rows: int, settings: DPOSettings) -> int:
    """Steps the run will take: `epochs` passes, or `min_steps` if that is more (the data repeats)."""
    return max(natural_steps(rows, settings), settings.min_steps)


def build_dataset(pairs_path: str | Path, settings: DPOSettings):
    return preference_dataset(pairs_path, settings.max_pairs, settings.seed, settings.rejected)


class UnchangedAdapterError(RuntimeError):
    """Training ended with every LoRA update still zero: the adapter is the base model."""


def check_adapter_changed(model, settings: DPOSettings, out_dir) -> None:
    """LoRA's B matrices start at zero, so an adapter whose B matrices are all still zero never changed the
    model: publishing it would make its table row the base model's, silently."""
    lora_b = [p for name, p in model.named_parameters() if "lora_B" in name]
    if lora_b and all(not bool(p.detach().abs().sum()) for p in lora_b):
        raise UnchangedAdapterError(
            f"variant {Path(out_dir).name!r} ({settings.method}): every LoRA weight is still zero after training; "
            "no step trained (see the log's skipped steps and dropped pairs), so no adapter is published"
        )


def build_trainer(common: dict, settings: DPOSettings, judge=None, scenes=None):
    from trl import DPOTrainer

    return DPOTrainer(**common)


def run_metrics(trainer, seconds: float) -> dict:
    return {}


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


def logged_mean_loss(log_history: list[dict], fallback: float) -> float:
    """Mean training loss over the logged steps, each logged value weighted by the steps it averages."""
    total, steps, previous = 0.0, 0, 0
    for entry in log_history:
        if "loss" in entry and "step" in entry:
            span = entry["step"] - previous
            total, steps, previous = total + entry["loss"] * span, steps + span, entry["step"]
    return total / steps if steps else fallback


def latest_checkpoint(checkpoint_dir: Path, fingerprint: str) -> str | None:
    """The last checkpoint a previous, interrupted run of the same settings left, if any. Checkpoints of other
    settings are removed: resuming them would silently train a mix of two configurations."""
    stamp = checkpoint_dir / "settings.sha256"
    if checkpoint_dir.exists() and (not stamp.exists() or stamp.read_text() != fingerprint):
        shutil.rmtree(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint)
    # a checkpoint is complete once trainer_state.json is in it (the Trainer writes it last)
    found = sorted(
        (p for p in checkpoint_dir.glob("checkpoint-*") if (p / "trainer_state.json").exists()),
        key=lambda p: int(p.name.split("-")[1]),
    )
    return str(found[-1]) if found else None


def method_module(settings: DPOSettings):
    """The module with the variant's method hooks: plain DPO is this module."""
    module = get(settings.method).module
    return import_module(module) if module else sys.modules[__name__]


def train_dpo(
    model_dir: str | Path,
    pairs_path: str | Path,
    out_dir: str | Path,
    settings: DPOSettings,
    use_cpu: bool = True,
    judge=None,
    scenes: dict | None = None,
    reference_logps: str | Path | None = None,
) -> dict:
    """Train one variant; writes ``adapter/``, ``train_log.jsonl`` and returns the metrics.
    ``judge`` ranks online samples (online_dpo, mixed_dpo); ``scenes`` (id -> ground-truth record) is what a
    judge that checks answers against the truth reads (the synthetic world's exact judge);
    ``reference_logps``: the pair table's reference log-prob artifact (mmalign.train.reference), read by the
    methods whose registry entry says so when ``settings.reference_logps`` is precomputed (without one, or with
    a stale one, the run scores its rows itself before training)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor, set_seed
    from trl import DPOConfig

    set_seed(settings.seed)
    out_dir = Path(out_dir)
    fingerprint = hashlib.sha256(
        json.dumps(asdict(settings), sort_keys=True).encode() + Path(pairs_path).read_bytes()
    ).hexdigest()
    resume = latest_checkpoint(out_dir / "checkpoints", fingerprint)
    # every row the run reads, checked before the model loads: a bad image fails now, not hours in
    checked = validate_pair_table(pairs_path, table_rejected_columns(settings.method, settings.rejected))
    log.info("%s: %d pairs checked (images decode, no empty prompt or answer)", pairs_path, checked)
    # precision, attention and the micro-batch, checked against this device before the model loads
    compute = resolve_here(settings.compute, use_cpu=use_cpu)
    per_device, accumulation = micro_batches(
        settings.batch_size, settings.per_device_batch_size, world_size(), key="per_device_batch_size"
    )
    log.info(
        "compute: %s, %s attention, gradient checkpointing %s; %d pairs per device x %d accumulation x %d processes",
        compute.dtype, compute.attention, "on" if compute.gradient_checkpointing else "off",
        per_device, accumulation, world_size(),
    )  # fmt: skip
    processor = AutoProcessor.from_pretrained(model_dir)
    answer_end = frame_for_training(processor)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, **compute.model_kwargs())
    model = attach_lora(model, settings)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    method = method_module(settings)
    dataset = method.build_dataset(pairs_path, settings)
    if answer_end:
        dataset = dataset.map(lambda row: end_answers([row], answer_end)[0])
    log.info(
        "%s on %d pairs, %d trainable parameters, loss %s%s",
        settings.method,
        len(dataset),
        trainable,
        settings.loss_type,
        f", resuming from {resume}" if resume else "",
    )
    natural = natural_steps(len(dataset), settings)
    steps = planned_steps(len(dataset), settings)
    args = DPOConfig(
        output_dir=str(out_dir / "checkpoints"),
        max_steps=steps if steps > natural else -1,  # -1: `epochs` decides
        # batch_size is the global batch: each of several processes (mmalign.train.launch) takes its share, in
        # micro-batches of per_device_batch_size whose gradients accumulate
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=accumulation,
        num_train_epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=settings.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        beta=settings.beta,
        loss_type=settings.loss_type,
        loss_weights=settings.loss_weights,
        logging_steps=settings.logging_steps,
        save_strategy="steps",
        save_steps=settings.checkpoint_steps,
        save_total_limit=2,
        report_to="none",
        use_cpu=use_cpu,
        **compute.trainer_kwargs(),  # bf16 / fp16 autocast, gradient checkpointing
        max_length=None,  # never truncate image tokens (TRL's advice for VLMs)
        seed=settings.seed,
        dataloader_num_workers=0,
        remove_unused_columns=not method.RAW_ROWS,  # a method that makes its rows per step needs the raw ones
    )
    common = dict(
        model=model,
        ref_model=None,  # PEFT: the reference is the model with its adapter disabled
        args=args,
        train_dataset=dataset,
        processing_class=processor,
        optimizers=(optimizer_groups(model, settings), None),
    )
    reference = "inline"
    if settings.reference_logps == "precomputed" and get(settings.method).precomputed_reference:
        # plain DPO's trainer, reading the reference from the batch: from the pair set's artifact, or scored here
        trainer = precomputed_reference_trainer_class()(**common)
        reference_by_disabled_adapter(trainer)
        start = time.time()
        reference = precompute_for_run(trainer, pairs_path, model_dir, answer_end, reference_logps, compute.dtype)
        log.info("reference log-probs: %s (%.1f s)", reference, time.time() - start)
        if reference == "inline":
            trainer.precompute_ref_logps, trainer.data_collator = False, trainer.vision_collator
    else:
        trainer = method.build_trainer(common, settings, judge=judge, scenes=scenes)
        reference_by_disabled_adapter(trainer)
    if settings.batching != "random":
        group_by_length(trainer, settings.batching)
    arithmetic = StepArithmetic(trainer)
    start = time.time()
    result = trainer.train(resume_from_checkpoint=resume)
    seconds = time.time() - start
    method_metrics = method.run_metrics(trainer, seconds)  # an online run checks its budgets here
    check_adapter_changed(model, settings, out_dir)  # nothing is published for a run that trained nothing
    save_adapter(trainer, model, out_dir / "adapter")
    if world_size() == 1:  # after the adapter is saved: counting leaves gradients behind
        arithmetic.count(trainer)
    if trainer.is_world_process_zero():
        with open(out_dir / "train_log.jsonl", "w") as fh:
            for entry in trainer.state.log_history:
                fh.write(json.dumps(entry) + "\n")
    last = next((e for e in reversed(trainer.state.log_history) if "loss" in e), {})
    if trainer.is_world_process_zero():
        shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
    epochs_run = result.global_step / natural * settings.epochs
    # what this process ran (a resumed run starts at its checkpoint's step): the rate, not the whole run's steps
    resumed_step = int(Path(resume).name.rsplit("-", 1)[-1]) if resume else 0
    epochs_here = (result.global_step - resumed_step) / natural * settings.epochs
    return {
        "pairs": len(dataset),
        "steps": result.global_step,
        # the step-weighted mean of the logged losses: the same for a resumed run (the log history is in the
        # checkpoint), where the trainer's own training_loss covers only the steps after the resume
        "train_loss": logged_mean_loss(trainer.state.log_history, result.training_loss),
        "train_seconds": round(seconds, 2),
        "epochs_run": round(epochs_run, 3),
        "pairs_per_second": round(len(dataset) * epochs_here / seconds, 3),
        "trainable_parameters": trainable,
        "reference_logps": reference,
        "arithmetic": arithmetic.summary(),
        "resumed_from": Path(resume).name if resume else None,
        "last_logged": last,
        "settings": asdict(settings),
        **method_metrics,
    }
