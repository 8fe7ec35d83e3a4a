"""Logging for Snakemake jobs: everything (logging, warnings, progress bars) goes to the rule's log file."""

from __future__ import annotations

import logging
import sys


def to_file(path: str, threads: int | None = None) -> None:
    """Send stderr and logging to ``path``; cap torch's threads at the rule's ``threads``."""
    stream = open(path, "a", buffering=1)  # noqa: SIM115 (stays open: the job writes to it until it ends)
    sys.stderr = stream
    logging.basicConfig(
        stream=stream, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    logging.captureWarnings(True)
    if threads:
        import torch

        torch.set_num_threads(threads)
