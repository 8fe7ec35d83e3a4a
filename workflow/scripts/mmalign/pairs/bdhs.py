"""Offline BDHS pair sets (``kind: bdhs``, rule build_bdhs_pairs): a policy-derived rejected answer for every pair
of a source pair set, sampled with the base model by the BDHS algorithm of ``mmalign.bdhs``."""

from __future__ import annotations

import json

from PIL import Image

from mmalign.bdhs import DEFAULT_EMBEDDER, BDHSSettings, Example, load_embedder, run_bdhs, skip_reason
from mmalign.models import load_policy
from mmalign.schema import Manifest, read_pairs, write_pairs


def build_bdhs_pairset(
    source_pairs, model_dir, spec: dict, pairs_path, manifest_path, stats_path, seed: int = 0, compute=None
):
    """Offline BDHS: for every source pair (prompt, image, chosen = SFT answer) sample a policy-derived
    rejected answer with the initial policy. The source's external rejected answer is kept in ``rejected`` and
    the BDHS answer goes to ``rejected_policy``, so one pair set serves plain BDHS and BDHS + external (Avg-DPO)."""
    known = BDHSSettings.__dataclass_fields__
    settings = BDHSSettings(**{k: v for k, v in spec.items() if k in known and k != "seed"}, seed=seed)
    frame = read_pairs(source_pairs)
    if spec.get("max_pairs") and len(frame) > spec["max_pairs"]:
        frame = frame.sample(n=spec["max_pairs"], random_state=seed).sort_index()
    manifest = Manifest(source=f"bdhs:{spec['source']}")
    examples, rows = [], {}
    for row in frame.itertuples():
        manifest.rows_read += 1
        reason = skip_reason(row.chosen)
        if reason is None:
            try:
                image = Image.open(row.image).convert("RGB")
            except (OSError, ValueError):
                reason = "bad_image"
        if reason:
            manifest.drop(reason)
            continue
        examples.append(Example(row.id, image, row.prompt, row.chosen))
        rows[row.id] = row
    model, processor = load_policy(model_dir, compute=compute)
    embedder = load_embedder(spec.get("embedder", DEFAULT_EMBEDDER))
    try:
        results = run_bdhs(model, processor, examples, settings, embedder)
    except Exception as err:  # an image the processor rejects fails the whole batch: name the cause
        raise RuntimeError(f"BDHS generation failed: {err}") from err
    out = []
    with open(stats_path, "w") as fh:
        for res in results:
            src = rows[res.id]
            fh.write(
                json.dumps(
                    {
                        "id": res.id,
                        "iterations": res.iterations,
                        "similarities": res.similarities,
                        "guided": res.guided,
                        "eps_s": settings.eps_s,
                    }
                )
                + "\n"
            )
            if not res.rejected.strip():
                manifest.drop("empty_generation")
                continue
            out.append(
                {
                    "id": res.id,
                    "image": src.image,
                    "prompt": src.prompt,
                    "chosen": src.chosen,
                    "rejected": src.rejected,
                    "rejected_policy": res.rejected,
                    "source": "bdhs",
                    "meta": {"source_id": src.id, "iterations": res.iterations, "guided": res.guided},
                }
            )
    manifest.rows_kept = len(out)
    manifest.extra = {"settings": {k: getattr(settings, k) for k in known}, "embedder": spec.get("embedder")}
    write_pairs(out, pairs_path)
    manifest.write(manifest_path)
    return manifest
