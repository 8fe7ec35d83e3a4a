"""The POVID analog (pair-set kind ``povid_analog``), built inside the synthetic world.

POVID (Zhou et al. 2024) takes LLaVA-Instruct answers as chosen and has GPT-4V inject realistic hallucinations
into them as rejected. Here the chosen answer is the scene's ground-truth answer and the rejected one is the same
answer, same wording, with hallucinations injected *from the world's priors* (a partner object that is not there,
an object's usual colour instead of its real one, a yes where the prior says yes):
``language.hallucinated_answer``.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mmalign.schema import DEFAULT_MAX_DROP_RATE, Manifest, check_drop_rate, write_pairs

from . import language as lang
from .world import Scene, WorldSettings, load_scenes


@dataclass
class PovidAnalogSettings:
    """Config ``pairsets.<name>`` with ``kind: povid_analog``."""

    seed: int = 0
    max_scenes: int | None = None
    descriptions_per_scene: int = 1
    existence_per_scene: int = 1  # yes/no existence questions (LLaVA-Instruct conversations are full of them)
    questions_per_scene: int = 1  # questions of the other families
    families: list[str] = field(
        default_factory=lambda: ["existence", "attribute", "count", "position", "letter", "compositional"]
    )
    short_answer_prob: float = 0.5  # share of yes/no questions that ask for one word
    prior_negative_prob: float = 0.5  # share of absent-object questions that ask about a present object's partner
    max_drop_rate: float = DEFAULT_MAX_DROP_RATE


def _existence_task(scene: Scene, world: WorldSettings, settings: PovidAnalogSettings, rng: random.Random) -> lang.Task:
    """Half about a present shape, half about an absent one; absent ones often the prior's partner."""
    short = rng.random() < settings.short_answer_prob
    if rng.random() < 0.5:
        return lang.existence_task(rng.choice(scene.objects).shape, rng, short)
    partners = sorted({world.partners[s] for s in scene.shapes} - scene.shapes)
    if partners and rng.random() < settings.prior_negative_prob:
        return lang.existence_task(rng.choice(partners), rng, short)
    absent = [s for s in world.partners if s not in scene.shapes]
    return lang.existence_task(rng.choice(absent), rng, short)


def povid_analog(
    scenes: list[Scene],
    images_dir: str | Path,
    world: WorldSettings,
    settings: PovidAnalogSettings,
    source: str = "povid_analog",
) -> tuple[list[dict], Manifest]:
    """Pairs from the preference split; drops (and counts) rows with a missing image, an empty answer,
    or a rejected answer identical to the chosen one."""
    rng = random.Random(settings.seed)
    manifest = Manifest(source=source)
    rows = []
    for scene in scenes[: settings.max_scenes]:
        image = Path(images_dir) / f"{scene.id}.png"
        tasks = [lang.make_task("description", scene, rng) for _ in range(settings.descriptions_per_scene)]
        if "existence" in settings.families:
            tasks += [_existence_task(scene, world, settings, rng) for _ in range(settings.existence_per_scene)]
        others = [f for f in settings.families if f != "existence"]
        tasks += [
            lang.make_task(rng.choice(others), scene, rng) for _ in range(settings.questions_per_scene if others else 0)
        ]
        for k, task in enumerate(tasks):
            manifest.rows_read += 1
            template_seed = rng.randrange(2**31)
            chosen = lang.answer(task, scene, random.Random(template_seed)).text
            rejected = lang.hallucinated_answer(task, scene, world, rng, template_seed).text
            if not image.is_file():
                manifest.drop("missing_image")
                continue
            if not chosen.strip() or not rejected.strip():
                manifest.drop("empty_answer")
                continue
            if chosen == rejected:
                manifest.drop("chosen_equals_rejected")
                continue
            rows.append(
                {
                    "id": f"{scene.id}-{k}",
                    "image": str(image),
                    "prompt": task.prompt,
                    "chosen": chosen,
                    "rejected": rejected,
                    "source": source,
                    # task and template seed let the prior corrupter rebuild this answer's wording
                    "meta": {
                        "scene": scene.id,
                        "family": task.family,
                        "task": asdict(task),
                        "template_seed": template_seed,
                    },
                }
            )
            manifest.rows_kept += 1
    return rows, manifest


def build_pairset(
    spec: dict, inputs: dict, pairs_path, manifest_path, seed: int, world_config: dict | None, **_
) -> Manifest:
    """Config ``pairsets.<name>`` with ``kind: povid_analog``: pairs from the world's preference split."""
    world = WorldSettings.from_config({**(world_config or {}), "seed": seed})
    known = PovidAnalogSettings.__dataclass_fields__
    settings = PovidAnalogSettings(**{k: v for k, v in spec.items() if k in known}, seed=seed)
    scenes = load_scenes(inputs["scenes"], split="preference")
    rows, manifest = povid_analog(scenes, inputs["images"], world, settings)
    check_drop_rate(manifest, settings.max_drop_rate)
    write_pairs(rows, pairs_path)
    manifest.write(manifest_path)
    return manifest
