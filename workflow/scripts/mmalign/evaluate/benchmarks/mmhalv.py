"""MMHal-Bench-V (the paper's MMHALv column): MMHal-Bench's items and 0-6 rubric, but the judge sees the
image (GPT-4o in the paper; the whole scene for the exact judge). Items, prompt and metrics: see ``mmhal``."""

from __future__ import annotations

from .mmhal import DEFAULTS, JUDGED, prompt, score_with  # noqa: F401 (the benchmark's API)

SEES_IMAGE = True


def score(items: list[dict], predictions: list[str], judge) -> tuple[list[dict], list[dict]]:
    return score_with(items, predictions, judge, SEES_IMAGE)
