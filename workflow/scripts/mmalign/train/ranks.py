"""What a training process needs to know about the others: how many there are and whether it is the first (its
share of the batch: ``mmalign.compute.micro_batches``; the adapter is written once by
``mmalign.adapters.save_adapter``)."""

from __future__ import annotations

import os


def world_size() -> int:
    """Number of training processes in this run (set by accelerate / torchrun; 1 when run directly)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_rank_zero() -> bool:
    return int(os.environ.get("RANK", "0")) == 0
