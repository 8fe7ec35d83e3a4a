"""Object HalBench analog: one "describe the image in detail." per evaluation scene; the world's parser extracts
the shapes an answer claims to see (``language.mentioned_shapes``). Scored by
``mmalign.evaluate.benchmarks.objhal`` (recall, CHAIR_i, CHAIR_s) with the world's reader.
"""

from __future__ import annotations

from mmalign.evaluate.benchmarks import objhal

from ..language import DESCRIPTION_PROMPTS, mentioned_shapes
from ..world import SHAPES, Scene, image_path


class WorldReader(objhal.Reader):
    """The shapes a description names."""

    def mentions(self, text: str) -> list[str]:
        return mentioned_shapes(text)


def synthetic_items(scenes: list[Scene], images_dir, seed: int, train_scenes: list[Scene]) -> list[dict]:
    return [
        {
            "id": f"describe-{scene.id}",
            "image": image_path(images_dir, scene.id),
            "question": DESCRIPTION_PROMPTS[0],
            "answer": " ".join(sorted(scene.shapes, key=SHAPES.index)),
            "subset": "all",
            "meta": {"scene": scene.id, "objects": sorted(scene.shapes, key=SHAPES.index)},
        }
        for scene in scenes
    ]
