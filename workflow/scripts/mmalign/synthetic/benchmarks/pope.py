"""POPE analog: for every evaluation scene, one question per present shape ("yes") and as many about absent shapes
("no"), the absent ones drawn

* random      - uniformly among absent shapes;
* popular     - the absent shapes that occur in the most training (SFT-split) scenes;
* adversarial - the absent shapes that co-occur most often with the present ones in training scenes.

Scored by ``mmalign.evaluate.benchmarks.pope`` like the real POPE.
"""

from __future__ import annotations

import random
from collections import Counter
from itertools import combinations

from mmalign.evaluate.benchmarks.pope import SPLITS

from ..language import EXISTENCE_PROMPTS, SHORT_SUFFIX
from ..world import SHAPES, Scene, image_path

DEFAULTS = {"prompt_suffix": SHORT_SUFFIX}  # the world's "answer with one word." instead of lmms-eval's sentence


def negatives(scene: Scene, strategy: str, k: int, freq: Counter, cooc: Counter, rng: random.Random) -> list[str]:
    absent = [s for s in SHAPES if s not in scene.shapes]
    if strategy == "random":
        return rng.sample(absent, min(k, len(absent)))
    if strategy == "popular":
        ranked = sorted(absent, key=lambda s: (-freq[s], SHAPES.index(s)))
    elif strategy == "adversarial":
        ranked = sorted(absent, key=lambda s: (-sum(cooc[frozenset((s, p))] for p in scene.shapes), SHAPES.index(s)))
    else:
        raise ValueError(f"unknown POPE split {strategy!r}; known: {SPLITS}")
    return ranked[:k]


def synthetic_items(scenes: list[Scene], images_dir, seed: int, train_scenes: list[Scene]) -> list[dict]:
    """Balanced yes/no items for every split; statistics for popular/adversarial come from training scenes."""
    freq = Counter(s for scene in train_scenes for s in scene.shapes)
    cooc = Counter(frozenset(pair) for scene in train_scenes for pair in combinations(sorted(scene.shapes), 2))
    rng = random.Random(seed)
    items = []
    for split in SPLITS:
        for scene in scenes:
            present = sorted(scene.shapes, key=SHAPES.index)
            absent = negatives(scene, split, len(present), freq, cooc, rng)
            for shape, truth in [(s, "yes") for s in present] + [(s, "no") for s in absent]:
                items.append(
                    {
                        "id": f"{split}-{scene.id}-{shape}",
                        "image": image_path(images_dir, scene.id),
                        "question": EXISTENCE_PROMPTS[0].format(shape=shape),
                        "answer": truth,
                        "subset": split,
                        "meta": {"scene": scene.id, "object": shape},
                    }
                )
    return items
