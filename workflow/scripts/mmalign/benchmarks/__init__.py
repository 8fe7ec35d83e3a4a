"""Benchmarks: each module declares, in one place, how items are built, how a prompt is formed,
how an answer is parsed and how predictions are scored.

Every module exposes ``DEFAULTS`` (prompt suffix, decoding), ``synthetic_items(scenes, images_dir, seed)``,
``prompt(item, suffix)`` and ``score(items, predictions) -> (rows, judgments)``, where rows are
``{"subset", "metric", "value"}`` dicts and judgments keep one verdict per item. A module with
``JUDGED = True`` is scored by a judge (``mmalign.judges``): ``score(items, predictions, judge)``.
"""

from __future__ import annotations

from . import gqa, llavaw, mmhal, mmhalv, mmvet, objhal, pope, vqat

# The paper's columns: POPE, MMHAL, MMHALv, LLaVAW, VQAT, GQA, MMVet, Recall (objhal, with CHAIR).
REGISTRY = {"pope": pope, "mmhal": mmhal, "mmhalv": mmhalv, "llavaw": llavaw, "vqat": vqat, "gqa": gqa,
            "mmvet": mmvet, "objhal": objhal}


def get(kind: str):
    try:
        return REGISTRY[kind]
    except KeyError:
        raise ValueError(f"unknown benchmark kind {kind!r}; known: {sorted(REGISTRY)}") from None


def build_items(spec: dict, inputs: dict, items_path, images_dir, manifest_path, seed: int) -> int:
    """Write a benchmark's items (schema.ITEM_FIELDS): from the world's eval split, or from a Hub snapshot."""
    from pathlib import Path

    from ..schema import Manifest, write_items

    module = get(spec["kind"])
    Path(images_dir).mkdir(parents=True, exist_ok=True)
    if spec["source"] == "synthetic":
        from ..world import load_scenes

        scenes = load_scenes(inputs["scenes"])
        evaluation = [s for s in scenes if s.split == "eval"]
        training = [s for s in scenes if s.split == "sft"]
        items = module.synthetic_items(evaluation, inputs["images"], seed, training)
        if spec.get("max_items"):
            items = items[: spec["max_items"]]
        manifest = Manifest(source=f"synthetic:{spec['kind']}", rows_read=len(items), rows_kept=len(items))
        manifest.write(manifest_path)
        return write_items(items, items_path)
    if spec["kind"] == "pope":
        from ..sources.pope import pope_to_items

        manifest = pope_to_items(Path(inputs["snapshot"]), Path(items_path), Path(images_dir), Path(manifest_path))
        return manifest.rows_kept
    from ..sources.benchmarks import LOADERS, benchmark_to_items

    if spec["kind"] in LOADERS:
        manifest = benchmark_to_items(spec["kind"], Path(inputs["snapshot"]), Path(items_path), Path(images_dir),
                                      Path(manifest_path), inputs.get("annotations"))
        return manifest.rows_kept
    raise ValueError(f"benchmark kind {spec['kind']!r} has no loader for downloaded data yet")
