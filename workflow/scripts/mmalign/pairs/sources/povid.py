"""POVID preference data (HF dataset ``YiyangAiLab/POVID_preference_data_for_VLLMs``) -> the common pair table.

The source is one JSON array (LLaVA conversation format, as read by POVID's ``llava/train/train_dpo.py``)::

    {"id": "COCO_train2014_000000353952",
     "image": "COCO_train2014_000000353952.jpg",            # joined onto --image_folder (COCO train2014)
     "conversations":          [{"from": "human", "value": "<image>\\nDescribe this image in detail."},
                                {"from": "gpt",   "value": "<chosen answer>"}],
     "rejected_conversations": [{"from": "human", "value": "<image>\\nDescribe this image in detail."},
                                {"from": "gpt",   "value": "<GPT-4V-corrupted answer>"}]}

Only single-turn records are kept: the pair table has one prompt and one answer per side. The ``id`` is a COCO
image id, which repeats when LLaVA-Instruct asked several questions about one image, so pair ids get a suffix.
"""

from __future__ import annotations

import json
from pathlib import Path

from mmalign.schema import Manifest

from .common import drop_duplicate, finish, image_ok, number_ids

SOURCE = "povid"
IMAGE_TOKEN = "<image>"
REQUIRED = ("id", "image", "conversations", "rejected_conversations")


def _read_records(path: Path) -> list:
    """A JSON array (the published file) or JSON lines (a converted copy)."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _single_turn(conv) -> tuple[str, str] | None:
    """(prompt, answer) of a [human, gpt] conversation; None if the shape is anything else."""
    if not isinstance(conv, list) or len(conv) != 2 or not all(isinstance(t, dict) for t in conv):
        return None
    (human, gpt) = conv
    if human.get("from") != "human" or gpt.get("from") != "gpt":
        return None
    if not isinstance(human.get("value"), str) or not isinstance(gpt.get("value"), str):
        return None
    prompt = human["value"].replace(IMAGE_TOKEN, "").strip()
    return prompt, gpt["value"].strip()


def _resolve_image(name: str, images_dir: Path) -> tuple[Path | None, str | None]:
    """(the file under images_dir, None) or (None, drop reason). The recorded relative path is tried, then its base
    name (the README's example uses ``./data/coco/COCO_train2014_....jpg`` while the image folder holds the bare
    COCO file names); a path that leaves the folder (``../x``, an absolute path) is refused, and the file must
    decode in full."""
    if Path(name).is_absolute() or ".." in Path(name).parts:
        return None, "image_outside_folder"
    reason = "missing_image"
    for candidate in (images_dir / name, images_dir / Path(name).name):
        reason = image_ok(candidate, images_dir)
        if reason is None:
            return candidate, None
        if reason != "missing_image":
            return None, reason
    return None, reason


def _convert(rec, images_dir: Path) -> tuple[dict | None, str | None]:
    """One record -> (pair row, None) or (None, drop reason)."""
    if not isinstance(rec, dict):
        return None, "not_an_object"
    if any(rec.get(k) in (None, "", []) for k in REQUIRED):
        return None, "missing_field"
    chosen_turn = _single_turn(rec["conversations"])
    rejected_turn = _single_turn(rec["rejected_conversations"])
    if chosen_turn is None or rejected_turn is None:
        many = any(isinstance(c, list) and len(c) > 2 for c in (rec["conversations"], rec["rejected_conversations"]))
        return None, "multi_turn" if many else "bad_conversations"
    (prompt, chosen), (rejected_prompt, rejected) = chosen_turn, rejected_turn
    if prompt != rejected_prompt:
        return None, "prompt_mismatch"
    if not prompt:
        return None, "empty_prompt"
    if not chosen or not rejected:
        return None, "empty_response"
    if chosen == rejected:
        return None, "chosen_equals_rejected"
    image, reason = _resolve_image(str(rec["image"]), images_dir)
    if image is None:
        return None, reason
    row = {
        "image": str(image),
        "prompt": prompt,
        "chosen": chosen,
        "rejected": rejected,
        "source": SOURCE,
        "meta": {"povid_id": str(rec["id"]), "image_field": str(rec["image"])},
    }
    return row, None


def povid_to_pairs(
    records_path: Path, images_dir: Path, out_parquet: Path, manifest_path: Path, max_drop_rate: float
) -> Manifest:
    """Convert the POVID JSON into ``out_parquet`` (schema.PAIR_COLUMNS) and write its Manifest.

    Malformed records are dropped and counted by reason. If the share dropped exceeds ``max_drop_rate`` nothing is
    written and a ValueError names the source and the rate: that many losses means a wrong file or image folder.
    """
    records_path, images_dir = Path(records_path), Path(images_dir)
    if not images_dir.is_dir():
        raise FileNotFoundError(f"{SOURCE}: image directory {str(images_dir)!r} does not exist")
    records = _read_records(records_path)
    manifest = Manifest(
        source=SOURCE,
        rows_read=len(records),
        extra={"records_path": str(records_path), "images_dir": str(images_dir), "max_drop_rate": max_drop_rate},
    )
    rows, seen_content = [], set()
    for index, rec in enumerate(records):
        row, reason = _convert(rec, images_dir)
        # an exact repeat would double that pair's weight in training
        row, reason = drop_duplicate(row, reason, seen_content)
        if row is None:
            manifest.drop(reason)
            continue
        row["meta"]["index"] = index
        rows.append(row)
    number_ids(rows, SOURCE, [str(r["meta"]["povid_id"]) for r in rows])
    return finish(rows, manifest, Path(out_parquet), Path(manifest_path), max_drop_rate)
