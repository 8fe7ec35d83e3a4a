"""Preference pairs built inside the synthetic world.

``povid_analog``: the analog of POVID (Zhou et al. 2024). POVID takes LLaVA-Instruct answers as
chosen and has GPT-4V inject realistic hallucinations into them as rejected. Here the chosen answer
is the scene's ground-truth answer and the rejected one is the same answer, same wording, with
hallucinations injected *from the world's priors* (a partner object that is not there, an object's
usual colour instead of its real one, a yes where the prior says yes): ``language.hallucinated_answer``.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import language as lang
from .schema import Manifest
from .world import Scene, WorldSettings


@dataclass
class PovidAnalogSettings:
    """Config ``pairsets.<name>`` with ``kind: povid_analog``."""

    seed: int = 0
    max_scenes: int | None = None
    descriptions_per_scene: int = 1
    existence_per_scene: int = 1  # yes/no existence questions (LLaVA-Instruct conversations are full of them)
    questions_per_scene: int = 1  # questions of the other families
    families: list[str] = field(default_factory=lambda: ["existence", "attribute", "count", "position", "letter", "compositional"])
    short_answer_prob: float = 0.5  # share of yes/no questions that ask for one word
    prior_negative_prob: float = 0.5  # share of absent-object questions that ask about a present object's partner
    max_drop_rate: float = 0.05


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


def povid_analog(scenes: list[Scene], images_dir: str | Path, world: WorldSettings, settings: PovidAnalogSettings,
                 source: str = "povid_analog") -> tuple[list[dict], Manifest]:
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
        tasks += [lang.make_task(rng.choice(others), scene, rng) for _ in range(settings.questions_per_scene if others else 0)]
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
                    # task and template seed let a corrupter rebuild this answer's wording (corrupt.PriorCorrupter)
                    "meta": {"scene": scene.id, "family": task.family, "task": asdict(task), "template_seed": template_seed},
                }
            )
            manifest.rows_kept += 1
    return rows, manifest


def check_drop_rate(manifest: Manifest, max_drop_rate: float) -> None:
    if manifest.drop_rate > max_drop_rate:
        raise ValueError(
            f"pair source {manifest.source!r} dropped {manifest.drop_rate:.1%} of its rows "
            f"(bound {max_drop_rate:.1%}): {dict(manifest.dropped)}"
        )


def build_pairset(spec: dict, inputs: dict, pairs_path, manifest_path, seed: int, world_config: dict | None,
                  name: str = "", outputs: dict | None = None) -> "Manifest":
    """Build one configured pair set (config ``pairsets.<name>``) into the common schema."""
    from pathlib import Path

    from .schema import write_pairs
    from .world import load_scenes

    kind = spec["kind"]
    bound = float(spec.get("max_drop_rate", 0.05))
    if kind == "povid_analog":
        world = WorldSettings.from_config({**(world_config or {}), "seed": seed})
        known = PovidAnalogSettings.__dataclass_fields__
        settings = PovidAnalogSettings(**{k: v for k, v in spec.items() if k in known}, seed=seed)
        scenes = load_scenes(inputs["scenes"], split="preference")
        rows, manifest = povid_analog(scenes, inputs["images"], world, settings)
        check_drop_rate(manifest, settings.max_drop_rate)
        write_pairs(rows, pairs_path)
        manifest.write(manifest_path)
        return manifest
    if kind == "povid":
        from .sources.povid import povid_to_pairs

        images = Path(inputs["images"]) / spec.get("images_subdir", "")
        return povid_to_pairs(Path(inputs["snapshot"]) / spec["records_file"], images, Path(pairs_path),
                              Path(manifest_path), bound)
    if kind == "vlfeedback":
        from .sources.vlfeedback import vlfeedback_to_pairs

        images = Path(inputs["images"]) / spec.get("images_subdir", "")
        return vlfeedback_to_pairs(Path(inputs["snapshot"]) / spec["records_file"], images, Path(pairs_path),
                                   Path(manifest_path), bound)
    if kind == "rlhfv":
        from .sources.rlhfv import rlhfv_to_pairs

        return rlhfv_to_pairs(Path(inputs["snapshot"]), Path((outputs or {})["images"]), Path(pairs_path),
                              Path(manifest_path), bound)
    if kind == "subsample":
        return subsample(spec, inputs["source"], pairs_path, manifest_path, seed, inputs.get("prompts"), name)
    if kind == "corrupted":
        from .corrupt import make_corrupter

        corrupter = make_corrupter(spec.get("corrupter"), seed, inputs.get("scenes"), world_config)
        return corrupted(spec, inputs["source"], pairs_path, manifest_path, corrupter, seed, inputs.get("prompts"), name)
    raise ValueError(f"unknown pair set kind {kind!r}")


# ------------------------------------------------------------------ pair sets made from other pair sets
# A subsample, a size-series point or a corrupted variant takes another pair set as `source`. Candidates are the
# source's rows that pass `where` (meta key -> allowed values) and `prompts_from` (prompt text also found in
# another pair set), shuffled with a seed that depends only on (seed, source): so the subsamples of one source
# are nested (n100 is inside n500), and a corrupted variant of a subsample keeps exactly its prompts and chosen.


def normalise_prompt(text: str) -> str:
    return " ".join(str(text).lower().split())


def candidate_pairs(frame, spec: dict, seed: int, prompt_pairs=None):
    """(shuffled candidate rows, counts of rows filtered out by reason)."""
    import json

    from .world import stable_seed

    metas = [json.loads(m) if m else {} for m in frame["meta"]]
    keep = [True] * len(frame)
    filtered: dict[str, int] = {}
    for key, allowed in (spec.get("where") or {}).items():
        allowed = set(allowed)
        passing = [k and meta.get(key) in allowed for k, meta in zip(keep, metas)]
        filtered[f"where_{key}"] = sum(keep) - sum(passing)
        keep = passing
    if prompt_pairs is not None:
        from .schema import read_pairs

        known = {normalise_prompt(p) for p in read_pairs(prompt_pairs)["prompt"]}
        passing = [k and normalise_prompt(p) in known for k, p in zip(keep, frame["prompt"])]
        filtered["prompts_from"] = sum(keep) - sum(passing)
        keep = passing
    candidates = frame[keep]
    order = candidates.sample(frac=1.0, random_state=stable_seed(seed, spec["source"], bits=32))
    return order, filtered


def subsample(spec: dict, source_pairs, pairs_path, manifest_path, seed: int, prompt_pairs=None, name: str = "") -> Manifest:
    """``n`` seeded random pairs of the source (all candidates if ``n`` is null); fewer candidates than ``n`` is an
    error, not a silently smaller set."""
    from .schema import read_pairs, write_pairs

    frame = read_pairs(source_pairs)
    order, filtered = candidate_pairs(frame, spec, seed, prompt_pairs)
    n = spec.get("n")
    if n is not None and len(order) < n:
        raise ValueError(f"pair set {name or spec['source']!r}: n={n} but source {spec['source']!r} has only "
                         f"{len(order)} candidate pairs (filtered out: {filtered})")
    chosen = order.head(n if n is not None else len(order)).sort_index()
    manifest = Manifest(source=f"subsample:{spec['source']}", rows_read=len(frame), rows_kept=len(chosen),
                        extra={"n": n, "filtered_out": filtered, "not_sampled": len(order) - len(chosen),
                               "note": "rows_read = rows_kept + filtered_out + not_sampled (a selection, no drops)"})
    write_pairs(chosen.to_dict("records"), pairs_path)
    manifest.write(manifest_path)
    return manifest


def corrupted(spec: dict, source_pairs, pairs_path, manifest_path, corrupter, seed: int, prompt_pairs=None,
              name: str = "") -> Manifest:
    """Keep each candidate's prompt and chosen response, replace its rejected response by the corrupter's
    corruption of the chosen one, until ``n`` pairs are kept (all candidates if ``n`` is null). Failed corruptions
    are counted by reason and bounded by ``max_drop_rate``."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    from .schema import read_pairs, write_pairs

    frame = read_pairs(source_pairs)
    order, filtered = candidate_pairs(frame, spec, seed, prompt_pairs)
    records = order.to_dict("records")
    want = spec.get("n")
    n = want or len(records)
    manifest = Manifest(source=f"corrupted:{spec['source']}", extra={"n": want, "filtered_out": filtered})
    workers = getattr(getattr(corrupter, "settings", None), "concurrency", 1)
    kind = getattr(corrupter, "kind", type(corrupter).__name__)
    rows, next_index = [], 0

    def corrupt(rec):
        return corrupter.corrupt(rec["prompt"], rec["chosen"], meta=json.loads(rec["meta"] or "{}"), pair_id=rec["id"])

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        while len(rows) < n and next_index < len(records):
            wave = records[next_index: next_index + n - len(rows)]  # never more than still needed, so order is kept
            next_index += len(wave)
            for rec, (text, reason) in zip(wave, pool.map(corrupt, wave)):
                manifest.rows_read += 1
                if reason:
                    manifest.drop(reason)
                    continue
                meta = json.loads(rec["meta"] or "{}")
                if "rejected_model" in meta:  # the source's rejected answer is gone; say who made the new one
                    meta["original_rejected_model"] = meta.pop("rejected_model")
                meta.update(original_rejected=rec["rejected"], source_id=rec["id"], rejected_model=f"corrupter_{kind}")
                rows.append({**rec, "rejected": text, "rejected_policy": "", "source": f"corrupted:{rec['source']}",
                             "meta": meta})
    manifest.rows_kept = len(rows)
    manifest.extra["not_attempted"] = len(records) - next_index
    for counter in ("calls", "failed_tries"):
        if hasattr(corrupter, counter):
            manifest.extra[f"corrupter_{counter}"] = getattr(corrupter, counter)
    check_drop_rate(manifest, float(spec.get("max_drop_rate", 0.05)))
    if want and len(rows) < want:
        raise ValueError(f"pair set {name or spec['source']!r}: only {len(rows)} of n={want} pairs could be corrupted "
                         f"({dict(manifest.dropped)})")
    write_pairs(rows, pairs_path)
    manifest.write(manifest_path)
    return manifest
