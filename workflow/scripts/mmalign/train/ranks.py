"""What a training process needs to know about the others: how many there are, its share of the batch, and how
the trained adapter is written once."""

from __future__ import annotations

import os
from pathlib import Path


def world_size() -> int:
    """Number of training processes in this run (set by accelerate / torchrun; 1 when run directly)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_rank_zero() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def per_process_batch(batch_size: int, world_size: int) -> int:
    """Split the global batch evenly over the processes (same batches, whatever the process count)."""
    if batch_size % world_size:
        raise ValueError(f"batch_size {batch_size} does not split evenly over {world_size} training processes")
    return batch_size // world_size


def save_adapter(trainer, model, path: str | Path) -> None:
    """Write the trained adapter once. Every rank takes part in gathering the weights (ZeRO-3 and FSDP shard
    them; the gathered dict is the whole model, from which PEFT keeps the adapter's keys); rank 0 writes."""
    state = trainer.accelerator.get_state_dict(trainer.model)
    if trainer.is_world_process_zero():
        model.save_pretrained(path, state_dict=state)
    trainer.accelerator.wait_for_everyone()
