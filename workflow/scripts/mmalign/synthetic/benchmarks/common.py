"""What several synthetic benchmarks share: a world question about a scene as a benchmark item."""

from __future__ import annotations

import random
from dataclasses import asdict

from mmalign.seeding import stable_seed

from ..language import answer, make_task
from ..world import SHAPES, Scene, image_path


def world_item(
    item_id: str,
    scene: Scene,
    images_dir,
    family: str,
    rng: random.Random,
    subset: str = "all",
    short: bool | None = False,
) -> dict:
    """One question of a task family about a scene, with the ground-truth answer as reference; the scene
    travels in ``meta`` for the exact judge, the object tags for a text-only judge."""
    task = make_task(family, scene, rng, short=short) if family == "existence" else make_task(family, scene, rng)
    return {
        "id": item_id,
        "image": image_path(images_dir, scene.id),
        "question": task.prompt,
        "answer": answer(task, scene, random.Random(rng.random())).text,
        "subset": subset,
        "meta": {
            "scene": scene.to_dict(),
            "family": family,
            "objects": sorted(scene.shapes, key=SHAPES.index),
            "task": asdict(task),
        },
    }


def family_items(
    scenes: list[Scene], images_dir, seed: int, name: str, families: list[str], per_family: int, subset_of=None
) -> list[dict]:
    """``per_family`` items of each family, each on its own scene (scenes are used in turn)."""
    rng = random.Random(stable_seed(seed, name))
    items, k = [], 0
    for family in families:
        for i in range(per_family):
            scene = scenes[k % len(scenes)]
            k += 1
            subset = subset_of(family) if subset_of else family
            items.append(world_item(f"{name}-{family}-{i}-{scene.id}", scene, images_dir, family, rng, subset))
    return items
