"""MM-Vet analog: 15 questions of each task family (existence, attribute, count, position, letter,
compositional, description), the family standing for the capability; the exact judge grades on the scene
(correctness = coverage x precision of the answer's claims). Scored by ``mmalign.evaluate.benchmarks.mmvet``.
"""

from __future__ import annotations

from ..language import FAMILIES
from ..world import Scene
from .common import family_items

PER_FAMILY = 15


def synthetic_items(
    scenes: list[Scene], images_dir, seed: int, train_scenes: list[Scene], scale: int = 1
) -> list[dict]:
    items = family_items(scenes, images_dir, seed, "mmvet", FAMILIES, PER_FAMILY * scale)
    for item in items:
        item["meta"]["capability"] = [item["meta"]["family"]]
        item["subset"] = "all"
    return items
