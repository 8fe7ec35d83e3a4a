"""The world's prior-driven corrupter (``corrupter: {kind: prior}``, registered in ``mmalign.registry``): the
world's own hallucination along its priors (an absent partner object, a shape's usual colour, a wrong count or
position: ``language.hallucinated_answer``), accepted only if the exact judge's reading finds more false claims in
it than in the chosen response. The LLM corrupter of the paper study is ``mmalign.pairs.corrupt``."""

from __future__ import annotations

import random

from mmalign.seeding import stable_seed

from . import language as lang
from .world import Scene, WorldSettings, load_scenes


class PriorCorrupter:
    """Needs each pair's scene and task in its meta (``scene``, ``task``, optional ``template_seed``)."""

    kind = "prior"

    def __init__(self, scenes: dict[str, Scene], world: WorldSettings, seed: int, attempts: int = 5):
        self.scenes, self.world, self.seed, self.attempts = scenes, world, seed, attempts

    def corrupt(self, prompt: str, response: str, *, meta: dict, pair_id: str) -> tuple[str | None, str | None]:
        scene = self.scenes.get(meta.get("scene"))
        if scene is None or "task" not in meta:
            return None, "no_scene_or_task"
        task = lang.Task(**meta["task"])
        rng = random.Random(stable_seed(self.seed, pair_id, "corrupt"))
        false_in_chosen = lang.assess(prompt, response, scene).false
        for _ in range(self.attempts):
            template_seed = meta.get("template_seed", rng.randrange(2**31))
            text = lang.hallucinated_answer(task, scene, self.world, rng, template_seed).text
            if text != response and lang.assess(prompt, text, scene).false > false_in_chosen:
                return text, None
        return None, "corruption_not_worse"


def make_corrupter(spec: dict, seed: int, scenes_path=None, world_config: dict | None = None) -> PriorCorrupter:
    """``spec``: the corrupter settings besides ``kind`` (``attempts``)."""
    if scenes_path is None:
        raise ValueError("the prior corrupter needs the world's scenes (default study only)")
    world = WorldSettings.from_config({**(world_config or {}), "seed": seed})
    return PriorCorrupter({s.id: s for s in load_scenes(scenes_path)}, world, seed, **spec)
