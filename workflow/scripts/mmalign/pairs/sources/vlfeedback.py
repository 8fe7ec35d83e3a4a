"""VLFeedback (HF dataset ``MMInstruction/VLFeedback``) -> the common pair table.

The records are JSON lines (``vlfeedback_80k.jsonl``), as the repo's own loading script ``VLFeedback.py`` reads
them::

    {"id": "...", "prompt": "...", "models": ["gpt-4v", "llava-v1.5-13b", ...],
     "completions": [{"annotations": {"Helpfulness":            {"Rating": "4", "Rationale": "..."},
                                      "Ethical Considerations": {"Rating": "5", "Rationale": "..."},
                                      "Visual Faithfulness":    {"Rating": "3", "Rationale": "..."}},
                      "model": "gpt-4v", "response": "..."}, ...]}          # 4 completions per prompt

Images: ``merged_images.zip`` in the same repo holds ``merged_images/<id>.jpg`` (the loading script joins
``f"{id}.jpg"`` onto the extracted folder); they come from the 9 instruction sources (COCO, SVIT/Visual Genome,
LLaVAR/LAION, ...). The download rule unzips it (``downloads.<name>.extract``).

Pairing rule (Silkie's ``make_vlfeedback_paired_dataset``): a completion's score is the mean of its numeric aspect
ratings; completions with a non-numeric rating ("N/A") or an empty response are not ranked (counted in
``extra.completions_not_ranked``). One pair per prompt, as in the paper (footnote 6: the chosen response is the one
GPT-4V ranked best): chosen = the best score, rejected = the worst; ties keep the earlier completion. A prompt whose
best and worst scores are equal carries no preference and is dropped as ``tied_scores``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from mmalign.schema import Manifest, empty_text_reason

from .common import drop_duplicate, finish, image_ok, number_ids

SOURCE = "vlfeedback"


def completion_score(completion: dict) -> float | None:
    """Mean of the numeric aspect ratings; None if any rating is missing or not a number."""
    annotations = completion.get("annotations")
    if not isinstance(annotations, dict) or not annotations:
        return None
    try:
        ratings = [float(aspect["Rating"]) for aspect in annotations.values()]
    except (TypeError, KeyError, ValueError):
        return None
    return sum(ratings) / len(ratings)


def _ranked(completions: list, not_ranked: Counter) -> list[tuple[float, int, dict]]:
    ranked = []
    for index, comp in enumerate(completions):
        if not isinstance(comp, dict):
            not_ranked["not_an_object"] += 1
            continue
        response = comp.get("response")
        if not isinstance(response, str) or not response.strip():
            not_ranked["empty_response"] += 1
            continue
        score = completion_score(comp)
        if score is None:
            not_ranked["no_numeric_rating"] += 1
            continue
        ranked.append((score, index, comp))
    return ranked


def _convert(rec, images_dir: Path, not_ranked: Counter) -> tuple[dict | None, str | None]:
    if not isinstance(rec, dict):
        return None, "not_an_object"
    if rec.get("id") in (None, "") or not isinstance(rec.get("completions"), list):
        return None, "missing_field"
    prompt = rec.get("prompt")
    if not isinstance(prompt, str) or not prompt.replace("<image>", "").strip():
        return None, "empty_prompt"
    ranked = _ranked(rec["completions"], not_ranked)
    if len(ranked) < 2:
        return None, "too_few_rated_responses"
    best = max(ranked, key=lambda r: (r[0], -r[1]))  # earlier completion wins a tie
    worst = min(ranked, key=lambda r: (r[0], r[1]))
    if best[0] == worst[0]:
        return None, "tied_scores"
    chosen, rejected = str(best[2]["response"] or "").strip(), str(worst[2]["response"] or "").strip()
    reason = empty_text_reason(prompt.replace("<image>", ""), chosen, rejected)
    if reason:
        return None, reason
    if chosen == rejected:
        return None, "chosen_equals_rejected"
    image = Path(images_dir) / f"{rec['id']}.jpg"
    reason = image_ok(image, Path(images_dir))
    if reason:
        return None, reason
    return {
        "image": str(image),
        "prompt": prompt.replace("<image>", "").strip(),
        "chosen": chosen,
        "rejected": rejected,
        "source": SOURCE,
        "meta": {
            "vlfeedback_id": str(rec["id"]),
            "chosen_model": str(best[2].get("model", "")),
            "rejected_model": str(worst[2].get("model", "")),
            "chosen_score": round(best[0], 4),
            "rejected_score": round(worst[0], 4),
        },
    }, None


def vlfeedback_to_pairs(
    records_path: Path, images_dir: Path, out_parquet: Path, manifest_path: Path, max_drop_rate: float
) -> Manifest:
    records_path, images_dir = Path(records_path), Path(images_dir)
    if not images_dir.is_dir():
        raise FileNotFoundError(
            f"{SOURCE}: image directory {str(images_dir)!r} does not exist (is merged_images.zip extracted?)"
        )
    manifest = Manifest(source=SOURCE, extra={"records_path": str(records_path), "images_dir": str(images_dir)})
    rows, not_ranked, seen = [], Counter(), set()
    with open(records_path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            manifest.rows_read += 1
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                manifest.drop("bad_json")
                continue
            row, reason = _convert(rec, images_dir, not_ranked)
            row, reason = drop_duplicate(row, reason, seen)
            if row is None:
                manifest.drop(reason)
                continue
            rows.append(row)
    number_ids(rows, SOURCE, [r["meta"]["vlfeedback_id"] for r in rows])
    manifest.extra["completions_not_ranked"] = dict(sorted(not_ranked.items()))
    manifest.extra["chosen_models"] = dict(Counter(r["meta"]["chosen_model"] for r in rows).most_common())
    return finish(rows, manifest, Path(out_parquet), Path(manifest_path), max_drop_rate)
