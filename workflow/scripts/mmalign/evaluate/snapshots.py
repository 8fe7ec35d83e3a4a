"""Benchmarks from their Hugging Face Hub snapshots -> the common item list
(``mmalign.schema.ITEM_FIELDS``). One loader per benchmark kind; every loader writes each image once as PNG, skips a
record without an image, a question or a reference answer, and counts it in the manifest by reason.

Record formats (the column names of the Hub datasets the paper's harness family, lmms-eval, uses):

* ``mmhal`` / ``mmhalv`` - ``Shengcao1006/MMHal-Bench``: ``response_template.json``, a list of 96 records
  (``question_type``, ``question_topic``, ``image_id``, ``image_src``, ``image_content`` [list of object
  tags], ``question``, ``gt_answer``, ``model_answer``); images are files in the snapshot (or in a zip in it)
  named after ``image_src``'s base name or ``image_id``.
* ``llavaw`` - ``lmms-lab/llava-bench-in-the-wild``: parquet with ``question_id``, ``question``, ``image``,
  ``caption``, ``gpt_answer`` (the reference), ``category`` (conv / detail / complex), ``image_id``.
* ``mmvet`` - ``lmms-lab/MMVet``: parquet with ``question_id``, ``image``, ``question``, ``answer`` (with
  ``<AND>`` / ``<OR>``), ``capability`` (list or comma-separated string), ``image_source``.
* ``vqat`` - ``lmms-lab/textvqa`` (validation split): parquet with ``question_id``, ``question``, ``image``,
  ``answers`` (10 human answers), ``image_id``.
* ``gqa`` - ``lmms-lab/GQA``: ``testdev_balanced_instructions`` parquet (``id``, ``imageId``, ``question``,
  ``answer``, ``fullAnswer``, ``types``) joined on ``imageId`` with ``testdev_balanced_images`` parquet
  (``id``, ``image``).

* ``objhal`` - Object HalBench (RLHF-V's ``obj_halbench_300_with_image.jsonl``): JSON lines with ``image_id``
  (COCO val2014 id), ``image`` (base64-encoded bytes, or a file name in the snapshot) and ``question``; the
  truth comes from a second snapshot with COCO's ``instances_val2014.json`` and ``captions_val2014.json``
  (CHAIR's ground truth: instance categories plus categories named in the captions).

``image`` columns are ``datasets`` Image structs (``bytes``, ``path``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import logging
import re
import zipfile
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image

from mmalign.schema import Manifest, write_items

from .coco_objects import mentioned_objects

log = logging.getLogger(__name__)


def image_bytes(value) -> bytes | None:
    """The bytes of a ``datasets`` Image struct (or raw bytes), None when there are none."""
    if isinstance(value, dict):
        value = value.get("bytes")
    return value if isinstance(value, (bytes, bytearray)) and value else None


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")


def parquet_rows(snapshot_dir: Path, under: str | None = None):
    """Every row of every parquet file under the snapshot (or under one of its sub-folders), in file order."""
    root = Path(snapshot_dir) / under if under else Path(snapshot_dir)
    files = sorted(p for p in root.rglob("*.parquet") if ".cache" not in p.parts)
    if not files:
        raise FileNotFoundError(f"no parquet files under {str(root)!r}")
    for path in files:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=128):
            yield from batch.to_pylist()


class ItemWriter:
    """Collects items, writes each distinct image once, and keeps the manifest's counts."""

    def __init__(self, source: str, images_dir: Path):
        self.images_dir = Path(images_dir)
        self.images_dir.mkdir(parents=True, exist_ok=True)
        self.manifest = Manifest(source=source)
        self.items: list[dict] = []
        self.ids: Counter = Counter()
        self.written: dict[str, str] = {}

    def image(self, data: bytes, name: str) -> str | None:
        digest = hashlib.sha1(data).hexdigest()
        name = f"{safe_name(Path(name).stem) or digest[:16]}.png"
        if self.written.get(name, digest) != digest:
            name = f"{Path(name).stem}-{digest[:8]}.png"
        if name not in self.written:
            try:
                Image.open(io.BytesIO(data)).convert("RGB").save(self.images_dir / name, "PNG")
            except OSError:
                return None
            self.written[name] = digest
        return str(self.images_dir / name)

    def add(
        self, base_id: str, data: bytes | None, image_name: str, question: str, answer: str, subset: str, meta: dict
    ) -> None:
        """One record; skipped and counted when its image, question or reference answer is missing."""
        self.manifest.rows_read += 1
        if data is None:
            return self.manifest.drop("missing_image")
        if not str(question or "").strip():
            return self.manifest.drop("missing_question")
        if not str(answer or "").strip():
            return self.manifest.drop("missing_answer")
        path = self.image(data, image_name)
        if path is None:
            return self.manifest.drop("bad_image")
        self.ids[base_id] += 1
        item_id = base_id if self.ids[base_id] == 1 else f"{base_id}-{self.ids[base_id] - 1}"
        self.items.append(
            {
                "id": item_id,
                "image": path,
                "question": str(question).strip(),
                "answer": str(answer).strip(),
                "subset": subset,
                "meta": meta,
            }
        )

    def finish(self, out_items: Path, manifest_path: Path) -> Manifest:
        self.manifest.rows_kept = len(self.items)
        self.manifest.extra.update(
            images_written=len(self.written), per_subset=dict(sorted(Counter(i["subset"] for i in self.items).items()))
        )
        if not self.items:
            raise ValueError(f"{self.manifest.source}: no usable records (dropped {dict(self.manifest.dropped)})")
        write_items(self.items, out_items)
        Path(manifest_path).parent.mkdir(parents=True, exist_ok=True)
        self.manifest.write(manifest_path)
        log.info(
            "%s: %d items from %d records (dropped %s), %d images",
            self.manifest.source,
            len(self.items),
            self.manifest.rows_read,
            dict(self.manifest.dropped),
            len(self.written),
        )
        return self.manifest


# ------------------------------------------------------------------------------------------------ loaders


def _image_files(snapshot_dir: Path) -> dict[str, bytes | Path]:
    """Image files of a snapshot by base name and by stem: plain files, and members of any zip archive."""
    found: dict[str, bytes | Path] = {}
    for path in Path(snapshot_dir).rglob("*"):
        if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp") and ".cache" not in path.parts:
            found.setdefault(path.name, path)
            found.setdefault(path.stem, path)
        elif path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    name = Path(member)
                    if name.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"):
                        data = archive.read(member)
                        found.setdefault(name.name, data)
                        found.setdefault(name.stem, data)
    return found


def mmhal_items(snapshot_dir: Path, writer: ItemWriter) -> None:
    records_path = next(iter(sorted(Path(snapshot_dir).rglob("response_template.json"))), None)
    if records_path is None:
        raise FileNotFoundError(f"MMHal-Bench: no response_template.json under {str(snapshot_dir)!r}")
    images = _image_files(snapshot_dir)
    for i, record in enumerate(json.loads(records_path.read_text())):
        src_name = Path(str(record.get("image_src") or "")).name
        image = images.get(src_name) or images.get(str(record.get("image_id") or "")) or None
        data = image.read_bytes() if isinstance(image, Path) else image
        writer.add(
            f"mmhal-{i}",
            data,
            src_name or str(record.get("image_id")),
            record.get("question"),
            record.get("gt_answer"),
            str(record.get("question_type") or "all"),
            {
                "objects": list(record.get("image_content") or []),
                "question_type": record.get("question_type"),
                "question_topic": record.get("question_topic"),
                "image_id": record.get("image_id"),
            },
        )


def llavaw_items(snapshot_dir: Path, writer: ItemWriter) -> None:
    for row in parquet_rows(snapshot_dir):
        writer.add(
            f"llavaw-{row.get('question_id')}",
            image_bytes(row.get("image")),
            str(row.get("image_id") or ""),
            row.get("question"),
            row.get("gpt_answer"),
            str(row.get("category") or "all"),
            {"context": row.get("caption") or "", "question_id": row.get("question_id")},
        )


def _capabilities(value) -> list[str]:
    if isinstance(value, str):
        return [c.strip() for c in value.split(",") if c.strip()]
    return [str(c) for c in value or []]


def mmvet_items(snapshot_dir: Path, writer: ItemWriter) -> None:
    for row in parquet_rows(snapshot_dir):
        writer.add(
            f"mmvet-{row.get('question_id')}",
            image_bytes(row.get("image")),
            str(row.get("question_id")),
            row.get("question"),
            row.get("answer"),
            "all",
            {"capability": _capabilities(row.get("capability")), "question_id": row.get("question_id")},
        )


def vqat_items(snapshot_dir: Path, writer: ItemWriter) -> None:
    for row in parquet_rows(snapshot_dir):
        answers = [str(a) for a in row.get("answers") or []]
        top = Counter(answers).most_common(1)[0][0] if answers else ""
        writer.add(
            f"vqat-{row.get('question_id')}",
            image_bytes(row.get("image")),
            str(row.get("image_id") or ""),
            row.get("question"),
            top,
            "all",
            {"answers": answers, "question_id": row.get("question_id")},
        )


def gqa_items(snapshot_dir: Path, writer: ItemWriter) -> None:
    images = {str(r["id"]): image_bytes(r.get("image")) for r in parquet_rows(snapshot_dir, "testdev_balanced_images")}
    for row in parquet_rows(snapshot_dir, "testdev_balanced_instructions"):
        image_id = str(row.get("imageId") or "")
        types = row.get("types") or {}
        writer.add(
            f"gqa-{row.get('id')}",
            images.get(image_id),
            image_id,
            row.get("question"),
            row.get("answer"),
            "all",
            {
                "full_answer": row.get("fullAnswer"),
                "image_id": image_id,
                "structural": types.get("structural") if isinstance(types, dict) else None,
            },
        )


OBJHAL_FILE = "obj_halbench_300_with_image.jsonl"


def _load_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno}): {err.msg}") from None


def coco_truth(annotations_dir: Path) -> dict[int, set[str]]:
    """COCO image id -> CHAIR's ground-truth categories (instance annotations + categories named in captions).

    As the reference CHAIR code, from COCO 2014 train and val: the val files are required (Object HalBench's images
    are val2014 images); the train files are read when the directory has them (they annotate other images, so
    they change no Object HalBench item, but a directory holding both gives the reference's full truth)."""
    annotations_dir = Path(annotations_dir)
    truth: dict[int, set[str]] = {}
    for split in ("val2014", "train2014"):
        paths = {kind: next(iter(sorted(annotations_dir.rglob(f"{kind}_{split}.json"))), None)
                 for kind in ("instances", "captions")}  # fmt: skip
        if None in paths.values():
            if split == "val2014":
                present = sorted(p.name for p in annotations_dir.rglob("*.json"))
                missing = [f"{kind}_{split}.json" for kind, path in paths.items() if path is None]
                raise FileNotFoundError(
                    f"Object HalBench: no {missing} under {str(annotations_dir)!r} (JSON files there: {present})"
                )
            continue
        instances, captions = _load_json(paths["instances"]), _load_json(paths["captions"])
        names = {c["id"]: c["name"] for c in instances["categories"]}
        for ann in instances["annotations"]:
            truth.setdefault(ann["image_id"], set()).add(names[ann["category_id"]])
        for ann in captions["annotations"]:
            truth.setdefault(ann["image_id"], set()).update(mentioned_objects(ann["caption"]))
    return truth


def _coco_id(value) -> int | None:
    digits = "".join(ch for ch in str(value).rsplit("_", 1)[-1] if ch.isdigit())
    return int(digits) if digits else None


def objhal_items(snapshot_dir: Path, writer: ItemWriter, annotations_dir: Path) -> None:
    truth = coco_truth(annotations_dir)
    files = {p.name: p for p in Path(snapshot_dir).rglob("*") if p.is_file()}
    path = next(iter(sorted(Path(snapshot_dir).rglob(OBJHAL_FILE))), None)
    if path is None:  # only the benchmark's own file: another jsonl in the folder is not Object HalBench
        present = sorted(p.name for p in Path(snapshot_dir).rglob("*.jsonl"))
        raise FileNotFoundError(
            f"Object HalBench: no {OBJHAL_FILE} under {str(snapshot_dir)!r} (jsonl there: {present})"
        )
    for i, line in enumerate(path.read_text().splitlines()):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}, line {i + 1}: not a JSON record ({err.msg})") from None
        image_id = _coco_id(record.get("image_id"))
        raw = str(record.get("image") or "")
        try:
            data = files[raw].read_bytes() if raw in files else base64.b64decode(raw, validate=True) or None
        except (binascii.Error, ValueError):
            data = None
        objects = sorted(truth.get(image_id, ())) if image_id is not None else []
        writer.add(
            f"objhal-{image_id if image_id is not None else i}",
            data,
            f"coco-{image_id}",
            record.get("question") or "Please describe this image in detail.",
            " ".join(objects),
            "all",
            {"objects": objects, "image_id": image_id, "vocabulary": "coco"},
        )


LOADERS = {
    "mmhal": mmhal_items,
    "mmhalv": mmhal_items,
    "llavaw": llavaw_items,
    "mmvet": mmvet_items,
    "vqat": vqat_items,
    "gqa": gqa_items,
    "objhal": objhal_items,
}


def benchmark_to_items(
    kind: str,
    snapshot_dir: Path,
    out_items: Path,
    images_dir: Path,
    manifest_path: Path,
    annotations_dir: Path | None = None,
) -> Manifest:
    """Items of one benchmark kind from its snapshot (Object HalBench also needs the COCO annotations)."""
    writer = ItemWriter(kind, images_dir)
    writer.manifest.extra["snapshot_dir"] = str(snapshot_dir)
    if kind == "objhal":
        if annotations_dir is None:
            raise ValueError("Object HalBench needs COCO annotations: set the benchmark's 'annotations'")
        objhal_items(Path(snapshot_dir), writer, Path(annotations_dir))
    else:
        LOADERS[kind](Path(snapshot_dir), writer)
    return writer.finish(Path(out_items), Path(manifest_path))
