"""MMHal-Bench (Sun et al. 2023): open questions about images, judged on the 0-6 rubric; the paper's MMHAL
column. Its judge is text-only (like GPT-4 in the original): it reads the object tags ("image contents"), the
question, the human reference answer and the response. ``mmhalv`` is the same benchmark judged with the
image in view (the paper's MMHal-Bench-V, GPT-4o).

Metrics: ``score`` = mean rating over judged items (overall and per question type), ``hallucination_rate`` =
share of judged items rated below 3 (the rubric's "with hallucination" half), and the judge's counts
(``judged``, ``judge_unparsed``, ``judge_failed``, ``judge_cached``); a failed judgment is never a 0.

Synthetic analog: 14 questions of each of MMHal's question types that the world can ask (attribute,
adversarial = an existence question about the absent usual partner of a present object, comparison =
compositional, counting, relation = position, holistic = description, other = letter reading); the
reference answer is the world's ground-truth answer, the tags are the scene's shapes, and the exact judge
reads only those (``mmhal``) or the whole scene (``mmhalv``).
"""

from __future__ import annotations

import random
from dataclasses import asdict

from ..judges import RateRequest
from ..language import Task, answer
from ..world import SHAPES, Scene, WorldSettings, image_path, stable_seed
from .common import empty_answers, judged_rows, prompt, rating_records, world_item

DEFAULTS = {"prompt_suffix": "", "max_new_tokens": 48}
JUDGED = True
SEES_IMAGE = False
RUBRIC = "mmhal"

# MMHal question type -> the world's task family that plays it
QUESTION_TYPES = {"attribute": "attribute", "adversarial": "existence", "comparison": "compositional",
                  "counting": "count", "relation": "position", "holistic": "description", "other": "letter"}
PER_TYPE = 14


def adversarial_item(item_id: str, scene: Scene, images_dir, rng: random.Random) -> dict:
    """"is there a <absent partner of a present shape>?": the co-occurrence prior says yes, the image says no."""
    partners = WorldSettings().partners
    absent = [partners[s] for s in sorted(scene.shapes, key=SHAPES.index) if partners[s] not in scene.shapes]
    shape = absent[0] if absent else rng.choice([s for s in SHAPES if s not in scene.shapes])
    task = Task("existence", f"is there a {shape} in the image?", shape=shape)
    return {"id": item_id, "image": image_path(images_dir, scene.id), "question": task.prompt,
            "answer": answer(task, scene, rng).text, "subset": "adversarial",
            "meta": {"scene": scene.to_dict(), "family": "existence",
                     "objects": sorted(scene.shapes, key=SHAPES.index), "task": asdict(task)}}


def synthetic_items(scenes: list[Scene], images_dir, seed: int, train_scenes: list[Scene]) -> list[dict]:
    rng = random.Random(stable_seed(seed, "mmhal"))  # mmhal and mmhalv ask the same questions
    items, k = [], 0
    for qtype, family in QUESTION_TYPES.items():
        for i in range(PER_TYPE):
            scene = scenes[k % len(scenes)]
            k += 1
            item_id = f"mmhal-{qtype}-{i}-{scene.id}"
            if qtype == "adversarial":
                items.append(adversarial_item(item_id, scene, images_dir, rng))
            else:
                items.append(world_item(item_id, scene, images_dir, family, rng, subset=qtype))
    return items


def rate_requests(items: list[dict], predictions: list[str], sees_image: bool) -> list[RateRequest]:
    return [RateRequest(
        id=item["id"], rubric=RUBRIC, question=item["question"], response=text, reference=item["answer"],
        image=item["image"] if sees_image else None,
        scene=item["meta"].get("scene") if sees_image else None,
        tags=tuple(item["meta"].get("objects", ())),
    ) for item, text in zip(items, predictions)]


def score_with(items: list[dict], predictions: list[str], judge, sees_image: bool) -> tuple[list[dict], list[dict]]:
    ratings = judge.rate(rate_requests(items, predictions, sees_image))
    subsets = [item["subset"] for item in items]
    rows = judged_rows(ratings, subsets, lambda rs: sum(r.score for r in rs) / len(rs))
    judged = [r for r in ratings if r.score is not None]
    rate = sum(r.score < 3 for r in judged) / len(judged) if judged else float("nan")
    rows += [{"subset": "all", "metric": "hallucination_rate", "value": rate}, empty_answers(predictions),
             {"subset": "all", "metric": "n", "value": float(len(items))}]
    return rows, rating_records(items, predictions, ratings)


def score(items: list[dict], predictions: list[str], judge) -> tuple[list[dict], list[dict]]:
    return score_with(items, predictions, judge, SEES_IMAGE)

