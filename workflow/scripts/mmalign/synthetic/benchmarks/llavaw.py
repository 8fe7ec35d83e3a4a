"""LLaVA-Bench-in-the-Wild analog: 30 items each of ``conv`` (attribute, count, position questions), ``detail``
(detailed descriptions) and ``complex`` (compositional questions); the reference is the world's ground-truth answer
and the exact judge rates both answers on the whole scene (helpfulness = 1 + 9 x coverage x precision). Scored by
``mmalign.evaluate.benchmarks.llavaw``.
"""

from __future__ import annotations

from ..world import Scene
from .common import family_items

CATEGORY = {
    "attribute": "conv",
    "count": "conv",
    "position": "conv",
    "description": "detail",
    "compositional": "complex",
}
PER_FAMILY = {"attribute": 10, "count": 10, "position": 10, "description": 30, "compositional": 30}


def synthetic_items(
    scenes: list[Scene], images_dir, seed: int, train_scenes: list[Scene], scale: int = 1
) -> list[dict]:
    items = []
    for family, n in PER_FAMILY.items():
        items += family_items(
            scenes[len(items) % len(scenes) :] + scenes[: len(items) % len(scenes)],
            images_dir,
            seed,
            f"llavaw-{family}",
            [family],
            n * scale,
            subset_of=CATEGORY.get,
        )
    return items
