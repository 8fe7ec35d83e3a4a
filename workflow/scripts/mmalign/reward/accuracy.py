"""Pairwise accuracy of a reward model (the paper's Table 7): the share of pairs it ranks the right way.

A pair counts as correct only when r(chosen) > r(rejected) strictly: a tie means the RM cannot tell the answers
apart, and counting it as half or whole would credit a constant reward with chance or perfect accuracy. Ties are
reported on their own. Pairs with identical answers are dropped first (``mmalign.reward.data.reward_rows``).
"""

from __future__ import annotations

import pandas as pd
from PIL import Image

from .data import IDENTICAL, reward_rows
from .model import reward_scores


def open_image(path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def accuracy_counts(chosen: list[float], rejected: list[float]) -> dict:
    """Accuracy, correct / tie counts and the mean margin r(chosen) - r(rejected) of scored pairs."""
    margins = [c - r for c, r in zip(chosen, rejected)]
    correct = sum(m > 0 for m in margins)
    return {
        "pairs": len(margins),
        "correct": correct,
        "ties": sum(m == 0 for m in margins),
        "accuracy": correct / len(margins) if margins else float("nan"),
        "mean_margin": sum(margins) / len(margins) if margins else float("nan"),
    }


def reward_accuracy(model, processor, table: pd.DataFrame, batch_size: int = 8, per_pair: bool = False) -> dict:
    """Score every usable pair of ``table`` (a pair table) and count how many the model ranks correctly; with
    ``per_pair``, also each pair's two scores and verdict (``per_pair``: what Table 7's intervals resample)."""
    rows, manifest = reward_rows(table, source="reward_accuracy")
    images = [open_image(row["image"]) for row in rows]
    prompts = [row["prompt"] for row in rows]
    chosen = reward_scores(model, processor, images, prompts, [row["chosen"] for row in rows], batch_size)
    rejected = reward_scores(model, processor, images, prompts, [row["rejected"] for row in rows], batch_size)
    result = {
        **accuracy_counts(chosen, rejected),
        "dropped_identical": manifest.dropped[IDENTICAL],
        "dropped": dict(manifest.dropped),
    }
    if per_pair:
        result["per_pair"] = [
            {"id": row["id"], "chosen": c, "rejected": r, "correct": c > r} for row, c, r in zip(rows, chosen, rejected)
        ]
    return result
