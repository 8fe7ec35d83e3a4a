"""What several benchmarks share: world questions as items, and tidy rows from judged scores."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import asdict

from ..judges import Rating, summarize
from ..language import answer, make_task
from ..world import SHAPES, Scene, image_path, stable_seed


def world_item(item_id: str, scene: Scene, images_dir, family: str, rng: random.Random, subset: str = "all",
               short: bool | None = False) -> dict:
    """One question of a task family about a scene, with the ground-truth answer as reference; the scene
    travels in ``meta`` for the exact judge, the object tags for a text-only judge."""
    task = make_task(family, scene, rng, short=short) if family == "existence" else make_task(family, scene, rng)
    return {
        "id": item_id,
        "image": image_path(images_dir, scene.id),
        "question": task.prompt,
        "answer": answer(task, scene, random.Random(rng.random())).text,
        "subset": subset,
        "meta": {"scene": scene.to_dict(), "family": family, "objects": sorted(scene.shapes, key=SHAPES.index),
                 "task": asdict(task)},
    }


def family_items(scenes: list[Scene], images_dir, seed: int, name: str, families: list[str], per_family: int,
                 subset_of=None) -> list[dict]:
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


def prompt(item: dict, suffix: str) -> str:
    return f"{item['question']} {suffix}".strip()


def judged_rows(ratings: list[Rating], subsets: list[str], aggregate, metric: str = "score") -> list[dict]:
    """``metric`` per subset and over all (``aggregate(ratings) -> float``, on judged ratings only), and the
    judge's counts (judged, ties, unparsed, failed, cached) beside it, so a failed judgment is never a score."""
    by_subset = defaultdict(list)
    for rating, subset in zip(ratings, subsets):
        by_subset[subset].append(rating)
    rows = []
    for subset in ["all"] + sorted(s for s in by_subset if s != "all"):
        group = ratings if subset == "all" else by_subset[subset]
        judged = [r for r in group if r.score is not None]
        rows.append({"subset": subset, "metric": metric, "value": aggregate(judged) if judged else float("nan")})
    rows += [{"subset": "all", "metric": k, "value": v} for k, v in summarize(ratings).items() if k != "ties"]
    return rows


def rating_records(items: list[dict], predictions: list[str], ratings: list[Rating]) -> list[dict]:
    """One judgments.jsonl record per item: the raw judgment with the judge id and prompt hash."""
    return [{"id": it["id"], "subset": it["subset"], "prediction": p, **r.to_record()}
            for it, p, r in zip(items, predictions, ratings)]


def empty_answers(predictions: list[str]) -> dict:
    return {"subset": "all", "metric": "empty_answers", "value": float(sum(not p.strip() for p in predictions))}
