"""Pair sets made from other pair sets (kinds ``subsample`` and ``corrupted``).

A subsample, a size-series point or a corrupted variant takes another pair set as ``source``. Candidates are the
source's rows that pass ``where`` (meta key -> allowed values) and ``prompts_from`` (prompt text also found in
another pair set), shuffled with a seed that depends only on (seed, source): so the subsamples of one source are
nested (n100 is inside n500), and a corrupted variant of a subsample keeps exactly its prompts and chosen.
"""

from __future__ import annotations

import json
import logging
import math
from concurrent.futures import ThreadPoolExecutor

from mmalign.schema import DEFAULT_MAX_DROP_RATE, Manifest, check_drop_rate, read_pairs, write_pairs
from mmalign.seeding import stable_seed

log = logging.getLogger(__name__)


def normalise_prompt(text: str) -> str:
    return " ".join(str(text).lower().split())


def candidate_pairs(frame, spec: dict, seed: int, prompt_pairs=None):
    """(shuffled candidate rows, counts of rows filtered out by reason)."""
    metas = [json.loads(m) if m else {} for m in frame["meta"]]
    keep = [True] * len(frame)
    filtered: dict[str, int] = {}
    for key, allowed in (spec.get("where") or {}).items():
        allowed = set(allowed)
        passing = [k and meta.get(key) in allowed for k, meta in zip(keep, metas)]
        if sum(keep) and not any(passing):  # a value spelt unlike the data's would otherwise blame what follows
            present = sorted({str(meta.get(key)) for k, meta in zip(keep, metas) if k})
            shown = present[:12] + ([f"... {len(present) - 12} more"] if len(present) > 12 else [])
            raise ValueError(
                f"pair set {spec['source']!r}: filter 'where.{key}' {sorted(allowed)} matches none of its "
                f"{sum(keep)} pairs; values of {key} there: {shown}"
            )
        filtered[f"where_{key}"] = sum(keep) - sum(passing)
        keep = passing
    if prompt_pairs is not None:
        known = {normalise_prompt(p) for p in read_pairs(prompt_pairs)["prompt"]}
        passing = [k and normalise_prompt(p) in known for k, p in zip(keep, frame["prompt"])]
        filtered["prompts_from"] = sum(keep) - sum(passing)
        keep = passing
    candidates = frame[keep]
    order = candidates.sample(frac=1.0, random_state=stable_seed(seed, spec["source"], bits=32))
    return order, filtered


def subsample(
    spec: dict, source_pairs, pairs_path, manifest_path, seed: int, prompt_pairs=None, name: str = ""
) -> Manifest:
    """``n`` seeded random pairs of the source (all candidates if ``n`` is null); fewer candidates than ``n`` is an
    error, not a silently smaller set."""
    frame = read_pairs(source_pairs)
    order, filtered = candidate_pairs(frame, spec, seed, prompt_pairs)
    n = spec.get("n")
    if n is not None and len(order) < n:
        raise ValueError(
            f"pair set {name or spec['source']!r}: n={n} but source {spec['source']!r} has only "
            f"{len(order)} candidate pairs (filtered out: {filtered})"
        )
    chosen = order.head(n if n is not None else len(order)).sort_index()
    manifest = Manifest(
        source=f"subsample:{spec['source']}",
        rows_read=len(frame),
        rows_kept=len(chosen),
        extra={
            "n": n,
            "filtered_out": filtered,
            "not_sampled": len(order) - len(chosen),
            "note": "rows_read = rows_kept + filtered_out + not_sampled (a selection, no drops)",
        },
    )
    write_pairs(chosen.to_dict("records"), pairs_path)
    manifest.write(manifest_path)
    return manifest


def check_shortfall(manifest: Manifest, want: int, min_share: float, name: str) -> None:
    """A set that ran out of candidates before ``n`` pairs: an error, unless ``min_share`` of n were kept (then the
    shortfall is counted in the manifest and logged). A source built by another base model seed can hold fewer
    usable pairs than the configured one (docs/uncertainty.md)."""
    kept, least = manifest.rows_kept, math.ceil(min_share * want)
    if kept < least:
        raise ValueError(
            f"pair set {name!r}: only {kept} of n={want} pairs could be corrupted ({dict(manifest.dropped)}); "
            f"min_share {min_share} asks for at least {least}"
        )
    manifest.extra["shortfall"] = want - kept
    log.warning(
        "pair set %r: %d of n=%d pairs (the source ran out of candidates; min_share %s)", name, kept, want, min_share
    )


def corrupted(
    spec: dict, source_pairs, pairs_path, manifest_path, corrupter, seed: int, prompt_pairs=None, name: str = ""
) -> Manifest:
    """Keep each candidate's prompt and chosen response, replace its rejected response by the corrupter's
    corruption of the chosen one, until ``n`` pairs are kept (all candidates if ``n`` is null). Failed corruptions
    are counted by reason and bounded by ``max_drop_rate``."""
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
            wave = records[next_index : next_index + n - len(rows)]  # never more than still needed, so order is kept
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
                rows.append(
                    {
                        **rec,
                        "rejected": text,
                        "rejected_policy": "",
                        "source": f"corrupted:{rec['source']}",
                        "meta": meta,
                    }
                )
    manifest.rows_kept = len(rows)
    manifest.extra["not_attempted"] = len(records) - next_index
    for counter in ("calls", "failed_tries"):
        if hasattr(corrupter, counter):
            manifest.extra[f"corrupter_{counter}"] = getattr(corrupter, counter)
    check_drop_rate(manifest, float(spec.get("max_drop_rate", DEFAULT_MAX_DROP_RATE)))
    if want and len(rows) < want:
        check_shortfall(manifest, want, float(spec.get("min_share", 1.0)), name or spec["source"])
    write_pairs(rows, pairs_path)
    manifest.write(manifest_path)
    return manifest
