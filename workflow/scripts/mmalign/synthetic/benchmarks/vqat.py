"""TextVQA analog (letter reading: "what letter is on the {shape}?", answer a letter or "none"). The world's
reader parses the letter the answer states (the first "... has the letter x" or "there is no letter ..."); an
answer that states no letter is unparsed. Items carry 10 identical human answers, so accuracy is exact match.
Scored by ``mmalign.evaluate.benchmarks.vqat``.
"""

from __future__ import annotations

import random

from mmalign.evaluate.benchmarks import vqat
from mmalign.seeding import stable_seed

from ..language import parse
from ..world import Scene
from .common import world_item

MAX_ITEMS = 120


def world_letter(text: str) -> str | None:
    for claim in parse(text):
        if claim.kind == "letter":
            return claim.letter
    return None


class WorldReader(vqat.Reader):
    """The letter the world's parser reads; human answers are letters already (no VQA normalization: it would
    drop the letter "a" as an article)."""

    def answer(self, text: str, item: dict) -> str | None:
        return world_letter(text)

    def human_answers(self, item: dict) -> list[str]:
        return item["meta"].get("answers") or [item["answer"]]


def synthetic_items(
    scenes: list[Scene], images_dir, seed: int, train_scenes: list[Scene], scale: int = 1
) -> list[dict]:
    rng = random.Random(stable_seed(seed, "vqat"))
    items = []
    for scene in scenes[: MAX_ITEMS * scale]:  # one question per scene: at most one item per eval scene
        item = world_item(f"vqat-{scene.id}", scene, images_dir, "letter", rng)
        letter = world_letter(item["answer"])
        item["meta"]["answers"] = [letter] * 10
        items.append(item)
    return items
