"""MMHal-Bench analog (``mmhal`` and ``mmhalv`` ask the same questions): 14 questions of each of MMHal's question
types that the world can ask (attribute, adversarial = an existence question about the absent usual partner of a
present object, comparison = compositional, counting, relation = position, holistic = description, other = letter
reading); the reference answer is the world's ground-truth answer, the tags are the scene's shapes, and the exact
judge reads only those (``mmhal``) or the whole scene (``mmhalv``). Scored by ``mmalign.evaluate.benchmarks.mmhal``.
"""

from __future__ import annotations

import random
from dataclasses import asdict

from mmalign.seeding import stable_seed

from ..language import Task, answer
from ..world import SHAPES, Scene, WorldSettings, image_path
from .common import world_item

# MMHal question type -> the world's task family that plays it
QUESTION_TYPES = {
    "attribute": "attribute",
    "adversarial": "existence",
    "comparison": "compositional",
    "counting": "count",
    "relation": "position",
    "holistic": "description",
    "other": "letter",
}
PER_TYPE = 14


def adversarial_item(item_id: str, scene: Scene, images_dir, rng: random.Random) -> dict:
    """ "is there a <absent partner of a present shape>?": the co-occurrence prior says yes, the image says no."""
    partners = WorldSettings().partners
    absent = [partners[s] for s in sorted(scene.shapes, key=SHAPES.index) if partners[s] not in scene.shapes]
    shape = absent[0] if absent else rng.choice([s for s in SHAPES if s not in scene.shapes])
    task = Task("existence", f"is there a {shape} in the image?", shape=shape)
    return {
        "id": item_id,
        "image": image_path(images_dir, scene.id),
        "question": task.prompt,
        "answer": answer(task, scene, rng).text,
        "subset": "adversarial",
        "meta": {
            "scene": scene.to_dict(),
            "family": "existence",
            "objects": sorted(scene.shapes, key=SHAPES.index),
            "task": asdict(task),
        },
    }


def synthetic_items(
    scenes: list[Scene], images_dir, seed: int, train_scenes: list[Scene], scale: int = 1
) -> list[dict]:
    rng = random.Random(stable_seed(seed, "mmhal"))  # mmhal and mmhalv ask the same questions
    items, k = [], 0
    for qtype, family in QUESTION_TYPES.items():
        for i in range(PER_TYPE * scale):
            scene = scenes[k % len(scenes)]
            k += 1
            item_id = f"mmhal-{qtype}-{i}-{scene.id}"
            if qtype == "adversarial":
                items.append(adversarial_item(item_id, scene, images_dir, rng))
            else:
                items.append(world_item(item_id, scene, images_dir, family, rng, subset=qtype))
    return items
