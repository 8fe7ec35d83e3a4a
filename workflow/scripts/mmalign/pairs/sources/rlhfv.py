"""RLHF-V (HF dataset ``openbmb/RLHF-V-Dataset``, the 5.7k "updated" release) -> the common pair table.

The repo holds ``RLHF-V-Dataset.parquet`` (dataset card, config ``default``) with the columns ``ds_name``,
``image`` (a datasets ``Image``: struct of ``bytes`` and ``path``), ``text`` (a JSON *string* with the keys
``question``, ``chosen`` and ``rejected``: the human-corrected answer is chosen, the model's original answer
rejected), ``origin_dataset``, ``origin_split`` (base64 meta data: source model and question type), ``idx`` and
``image_path``. Public loaders read it the same way (e.g. ``make_rlhfv_paired_dataset``: ``json.loads(sample["text"])``
then ``["question"]``, ``["chosen"]``, ``["rejected"]``).

Images come *inside* the parquet (various sources: COCO, WikiArt, landmarks, scene text...); each distinct image is
written once to ``images_dir`` in its own format, after a full decode (an undecodable image drops its row).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pyarrow.parquet as pq

from mmalign.schema import Manifest

from .common import drop_duplicate, finish, number_ids

SOURCE = "rlhfv"
TEXT_KEYS = ("question", "chosen", "rejected")


def _image_bytes(value) -> bytes | None:
    if isinstance(value, dict):
        value = value.get("bytes")
    return bytes(value) if isinstance(value, (bytes, bytearray)) and value else None


def _write_image(data: bytes, images_dir: Path, written: dict[str, str]) -> str | None:
    """Decode fully (a truncated file fails here, not in training), then store the original bytes once."""
    from PIL import Image

    digest = hashlib.sha1(data).hexdigest()
    if digest in written:
        return written[digest]
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            fmt = (image.format or "png").lower()
    except Exception:  # PIL raises many types for corrupt data
        return None
    path = images_dir / f"{digest[:20]}.{'jpg' if fmt == 'jpeg' else fmt}"
    path.write_bytes(data)
    written[digest] = str(path)
    return written[digest]


def _text(value) -> tuple[dict | None, str | None]:
    if not isinstance(value, str):
        return None, "missing_field"
    try:
        text = json.loads(value)
    except json.JSONDecodeError:
        return None, "bad_text_json"
    if not isinstance(text, dict) or any(k not in text for k in TEXT_KEYS):
        return None, "missing_field"
    return text, None


def _convert(row: dict, images_dir: Path, written: dict) -> tuple[dict | None, str | None]:
    text, reason = _text(row.get("text"))
    if reason:
        return None, reason
    prompt, chosen, rejected = (str(text[k] or "").replace("<image>", "").strip() for k in TEXT_KEYS)
    if not prompt:
        return None, "empty_prompt"
    if not chosen or not rejected:
        return None, "empty_response"
    if chosen == rejected:
        return None, "chosen_equals_rejected"
    data = _image_bytes(row.get("image"))
    if data is None:
        return None, "missing_image"
    image = _write_image(data, images_dir, written)
    if image is None:
        return None, "bad_image"
    return {
        "image": image,
        "prompt": prompt,
        "chosen": chosen,
        "rejected": rejected,
        "source": SOURCE,
        "meta": {
            "idx": row.get("idx"),
            "ds_name": row.get("ds_name"),
            "origin_dataset": row.get("origin_dataset"),
            "image_path": row.get("image_path"),
        },
    }, None


def rlhfv_to_pairs(
    snapshot_dir: Path, images_dir: Path, out_parquet: Path, manifest_path: Path, max_drop_rate: float
) -> Manifest:
    snapshot_dir, images_dir = Path(snapshot_dir), Path(images_dir)
    files = sorted(p for p in snapshot_dir.rglob("*.parquet") if ".cache" not in p.relative_to(snapshot_dir).parts)
    if not files:
        raise FileNotFoundError(f"{SOURCE}: no parquet files under {str(snapshot_dir)!r}")
    images_dir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(source=SOURCE, extra={"files": [str(p.relative_to(snapshot_dir)) for p in files]})
    rows, seen, written = [], set(), {}
    for path in files:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=64):
            for record in batch.to_pylist():
                manifest.rows_read += 1
                row, reason = _convert(record, images_dir, written)
                row, reason = drop_duplicate(row, reason, seen)
                if row is None:
                    manifest.drop(reason)
                    continue
                rows.append(row)
    number_ids(rows, SOURCE, [str(r["meta"]["idx"]) for r in rows])
    manifest.extra["images_written"] = len(written)
    return finish(rows, manifest, Path(out_parquet), Path(manifest_path), max_drop_rate)
