"""GQA (Hudson & Manning 2019): compositional questions with short answers; the paper's GQA column.

Metric: ``accuracy`` = exact match of the normalized answer with the normalized ground truth (0-1), the
testdev-balanced protocol of LLaVA's ``eval_gqa.py`` / lmms-eval. Normalization (``normalize_short``): lower
case, surrounding whitespace and trailing full stops removed, inner whitespace collapsed. (LLaVA's script
also strips a trailing period only; lmms-eval compares lower-cased, stripped strings, so "Yes." is wrong
there and right here.)

Parse rule: real data: the whole normalized answer; empty = *unparsed* (counted, scored wrong). Synthetic
analog ("what colour is the shape at the {pos}?" / "what shape is at the {pos}?", answers a colour or a
shape word): the colour or shape of the object the world's parser reads at the asked position (else of the
first object the answer mentions); an answer that names none is unparsed.
"""

from __future__ import annotations

import random
import re

from ..language import parse
from ..world import POSITION_WORDS, Scene, stable_seed
from .common import prompt, world_item  # noqa: F401

DEFAULTS = {"prompt_suffix": "", "max_new_tokens": 16}
MAX_ITEMS = 150
_POSITION_RE = re.compile(r"\bat the (" + "|".join(sorted(POSITION_WORDS.values(), key=len, reverse=True)) + r")\b")


def normalize_short(text: str) -> str:
    return " ".join(text.strip().lower().rstrip(".").split())


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


def parse_answer(text: str, item: dict) -> str | None:
    """The benchmark's parse rule (module docstring); None = unparsed."""
    if "scene" in item["meta"]:
        return world_attribute(text, item["question"])
    return normalize_short(text) or None


def truth(item: dict) -> str:
    return item["meta"]["short_answer"] if "scene" in item["meta"] else normalize_short(item["answer"])


def synthetic_items(scenes: list[Scene], images_dir, seed: int, train_scenes: list[Scene]) -> list[dict]:
    rng = random.Random(stable_seed(seed, "gqa"))
    items = []
    for scene in scenes[:MAX_ITEMS]:
        item = world_item(f"gqa-{scene.id}", scene, images_dir, "compositional", rng)
        item["meta"]["short_answer"] = world_attribute(item["answer"], item["question"])
        items.append(item)
    return items


def score(items: list[dict], predictions: list[str]) -> tuple[list[dict], list[dict]]:
    judgments = []
    for item, text in zip(items, predictions):
        parsed = parse_answer(text, item)
        judgments.append({"id": item["id"], "parsed": parsed, "truth": truth(item),
                          "correct": parsed is not None and parsed == truth(item)})
    n = len(items)
    rows = [{"subset": "all", "metric": "accuracy", "value": sum(j["correct"] for j in judgments) / n if n else float("nan")},
            {"subset": "all", "metric": "unparsed", "value": float(sum(j["parsed"] is None for j in judgments))},
            {"subset": "all", "metric": "n", "value": float(n)}]
    return rows, judgments
