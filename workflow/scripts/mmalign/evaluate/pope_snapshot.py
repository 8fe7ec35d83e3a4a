"""POPE as used by lmms-eval (HF dataset ``lmms-lab/POPE``) -> the common benchmark item list.

The repo holds parquet files (``data/test-0000k-of-00003.parquet`` for the ``default`` config, split ``test``;
``Full/...`` for the ``Full`` config, splits adversarial/popular/random) with the columns ``id``, ``question_id``,
``question``, ``answer`` ("yes"/"no"), ``image_source`` (COCO val2014 name), ``category``
(adversarial/popular/random) and ``image`` (a datasets ``Image``: struct of ``bytes`` and ``path``).

Both configs hold the same 9,000 questions, so a snapshot with both would list each twice: a row repeating a
(subset, image_source, question) already seen is skipped and counted in ``extra["duplicates_skipped"]`` (so
rows_read = rows_kept + dropped + duplicates_skipped). POPE asks about each (image, object) once per subset, and
question_id numbering may differ between configs, so question_id is left out of that key. To avoid the doubled
read, download only ``data/*`` (the ``default`` config that lmms-eval's ``pope`` task uses).
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image

from mmalign.schema import Manifest, write_items

from .snapshots import image_bytes, safe_name

log = logging.getLogger(__name__)

SOURCE = "pope"
SUBSETS = ("adversarial", "popular", "random")


def _subset(row: dict, path: Path) -> str | None:
    """The row's category, else the split named in the file path (Full/<split>/...)."""
    category = str(row.get("category") or "").strip().lower()
    if category in SUBSETS:
        return category
    named = [s for s in SUBSETS if any(s in part.lower() for part in path.parts)]
    return named[0] if len(named) == 1 else None


def pope_to_items(snapshot_dir: Path, out_items: Path, images_dir: Path, manifest_path: Path) -> Manifest:
    """Read every parquet file under ``snapshot_dir``, write each distinct image once to ``images_dir`` as PNG and
    the items (schema.ITEM_FIELDS) to ``out_items``; rows without image or a yes/no answer are skipped and counted.

    ``question`` is the raw text: the prompt suffix ("Answer the question using a single word or phrase.") belongs
    to the evaluation protocol, not the data.
    """
    snapshot_dir, images_dir = Path(snapshot_dir), Path(images_dir)
    files = sorted(p for p in snapshot_dir.rglob("*.parquet") if ".cache" not in p.relative_to(snapshot_dir).parts)
    if not files:
        raise FileNotFoundError(f"{SOURCE}: no parquet files under {str(snapshot_dir)!r}")
    images_dir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(
        source=SOURCE,
        extra={"snapshot_dir": str(snapshot_dir), "files": [str(p.relative_to(snapshot_dir)) for p in files]},
    )
    items, seen, ids = [], set(), Counter()
    written: dict[str, str] = {}  # image file name -> sha1 of the source bytes
    duplicates = 0
    for path in files:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=256):
            for row in batch.to_pylist():
                manifest.rows_read += 1
                data = image_bytes(row.get("image"))
                answer = str(row.get("answer") or "").strip().lower()
                subset = _subset(row, path)
                question = str(row.get("question") or "").strip()
                if data is None:
                    manifest.drop("missing_image")
                    continue
                if not answer:
                    manifest.drop("missing_answer")
                    continue
                if answer not in ("yes", "no"):
                    manifest.drop("bad_answer")
                    continue
                if subset is None:
                    manifest.drop("missing_category")
                    continue
                if not question:
                    manifest.drop("missing_question")
                    continue
                qid, source_name = str(row.get("question_id", "")), str(row.get("image_source") or "")
                key = (subset, source_name, question)
                if key in seen:
                    duplicates += 1
                    continue
                seen.add(key)
                digest = hashlib.sha1(data).hexdigest()
                name = f"{safe_name(source_name) or digest[:16]}.png"
                if written.get(name, digest) != digest:  # same name, different picture: keep both
                    name = f"{Path(name).stem}-{digest[:8]}.png"
                if name not in written:
                    try:
                        Image.open(io.BytesIO(data)).convert("RGB").save(images_dir / name, "PNG")
                    except OSError:
                        manifest.drop("bad_image")
                        continue
                    written[name] = digest
                base = f"{SOURCE}-{subset}-{qid}"
                ids[base] += 1
                items.append(
                    {
                        "id": base if ids[base] == 1 else f"{base}-{ids[base] - 1}",
                        "image": str(images_dir / name),
                        "question": question,
                        "answer": answer,
                        "subset": subset,
                        "meta": {"question_id": row.get("question_id"), "image_source": source_name},
                    }
                )
    manifest.rows_kept = len(items)
    manifest.extra.update(
        duplicates_skipped=duplicates,
        images_written=len(written),
        per_subset=dict(sorted(Counter(i["subset"] for i in items).items())),
    )
    if not items:
        raise ValueError(f"{SOURCE}: no usable rows in {snapshot_dir} (dropped {dict(manifest.dropped)})")
    write_items(items, out_items)
    Path(manifest_path).parent.mkdir(parents=True, exist_ok=True)
    manifest.write(manifest_path)
    log.info(
        "%s: %d items from %d rows in %d files (%d duplicates, dropped %s), %d images -> %s",
        SOURCE,
        len(items),
        manifest.rows_read,
        len(files),
        duplicates,
        dict(manifest.dropped),
        len(written),
        out_items,
    )
    return manifest
