"""POPE (Li et al. 2023): yes/no object-existence questions in three negative-sampling splits.

Synthetic analog: for every evaluation scene, one question per present shape ("yes") and as many
about absent shapes ("no"), the absent ones drawn

* random      - uniformly among absent shapes;
* popular     - the absent shapes that occur in the most training (SFT-split) scenes;
* adversarial - the absent shapes that co-occur most often with the present ones in training scenes.

Parse rule (ours, pinned): lower-case the answer, take its first word (letters only); "yes" and
"no" are answers, anything else is *unparsed*: counted in ``unparsed`` and scored as wrong (never a
positive). This differs from lmms-eval (exact match of the whole answer to "yes"/"no") and from
LLaVA's eval_pope.py (anything without "no"/"not" counts as yes); see README "Metrics".
``yes_ratio`` is the share of *predicted* yes, as in LLaVA's script (lmms-eval reports the
ground-truth ratio instead).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from itertools import combinations

from ..language import EXISTENCE_PROMPTS, SHORT_SUFFIX
from ..world import SHAPES, Scene, image_path

SPLITS = ["random", "popular", "adversarial"]
DEFAULTS = {"prompt_suffix": SHORT_SUFFIX, "max_new_tokens": 8}


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


def prompt(item: dict, suffix: str) -> str:
    return f"{item['question']} {suffix}".strip()


def parse_answer(text: str) -> str | None:
    """'yes' / 'no' from the first word of the answer, else None (unparsed)."""
    m = re.match(r"\W*([a-z]+)", text.lower())
    word = m.group(1) if m else ""
    return word if word in ("yes", "no") else None


def split_metrics(truths: list[str], preds: list[str | None]) -> dict[str, float]:
    n = len(truths)
    tp = sum(t == "yes" and p == "yes" for t, p in zip(truths, preds))
    fp = sum(t == "no" and p == "yes" for t, p in zip(truths, preds))
    fn = sum(t == "yes" and p != "yes" for t, p in zip(truths, preds))
    correct = sum(t == p for t, p in zip(truths, preds))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": correct / n if n else float("nan"),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "yes_ratio": sum(p == "yes" for p in preds) / n if n else float("nan"),
        "unparsed": float(sum(p is None for p in preds)),
        "n": float(n),
    }


def score(items: list[dict], predictions: list[str]) -> tuple[list[dict], list[dict]]:
    """Per-split metrics, plus subset 'all' = the mean over splits (the table's POPE column)."""
    parsed = [parse_answer(p) for p in predictions]
    judgments = [
        {"id": it["id"], "subset": it["subset"], "truth": it["answer"], "parsed": pr, "correct": pr == it["answer"]}
        for it, pr in zip(items, parsed)
    ]
    rows = []
    per_split = {}
    for split in sorted({it["subset"] for it in items}, key=lambda s: SPLITS.index(s) if s in SPLITS else 99):
        idx = [i for i, it in enumerate(items) if it["subset"] == split]
        per_split[split] = split_metrics([items[i]["answer"] for i in idx], [parsed[i] for i in idx])
        rows += [{"subset": split, "metric": k, "value": v} for k, v in per_split[split].items()]
    for metric in ("accuracy", "precision", "recall", "f1", "yes_ratio"):
        rows.append({"subset": "all", "metric": metric, "value": sum(m[metric] for m in per_split.values()) / len(per_split)})
    rows.append({"subset": "all", "metric": "unparsed", "value": float(sum(p is None for p in parsed))})
    return rows, judgments
