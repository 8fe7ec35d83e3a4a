"""GQA analog ("what colour is the shape at the {pos}?" / "what shape is at the {pos}?", answers a colour or a
shape word). The world's reader parses the colour or shape of the object the world's parser reads at the asked
position (else of the first object the answer mentions); an answer that names none is unparsed. The truth is the
same reading of the ground-truth answer (``meta.short_answer``). Scored by ``mmalign.evaluate.benchmarks.gqa``.
"""

from __future__ import annotations

import random
import re

from mmalign.evaluate.benchmarks import gqa
from mmalign.seeding import stable_seed

from ..language import parse
from ..world import POSITION_WORDS, Scene
from .common import world_item

MAX_ITEMS = 150
_POSITION_RE = re.compile(r"\bat the (" + "|".join(sorted(POSITION_WORDS.values(), key=len, reverse=True)) + r")\b")


def world_attribute(text: str, question: str) -> str | None:
    wants = "colour" if "colour" in question else "shape"
    asked = _POSITION_RE.search(question.lower())
    objects = [c for c in parse(text) if c.kind == "object"]
    at_position = [c for c in objects if asked and c.position == asked.group(1)]
    for claim in at_position + objects:
        value = getattr(claim, wants)
        if value:
            return value
    return None


class WorldReader(gqa.Reader):
    def answer(self, text: str, item: dict) -> str | None:
        return world_attribute(text, item["question"])

    def truth(self, item: dict) -> str:
        return item["meta"]["short_answer"]


def synthetic_items(
    scenes: list[Scene], images_dir, seed: int, train_scenes: list[Scene], scale: int = 1
) -> list[dict]:
    rng = random.Random(stable_seed(seed, "gqa"))
    items = []
    for scene in scenes[: MAX_ITEMS * scale]:  # one question per scene: at most one item per eval scene
        item = world_item(f"gqa-{scene.id}", scene, images_dir, "compositional", rng)
        item["meta"]["short_answer"] = world_attribute(item["answer"], item["question"])
        items.append(item)
    return items
