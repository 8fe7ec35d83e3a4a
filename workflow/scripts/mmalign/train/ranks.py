"""What a training process needs to know about the others: how many there are and its share of the batch (the
trained adapter is written once by ``mmalign.adapters.save_adapter``)."""

from __future__ import annotations

import os


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
