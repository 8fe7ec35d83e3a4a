"""What every real-data pair adapter does at the end: number the ids, bound the drop rate, write table + manifest."""

from __future__ import annotations

import logging
from pathlib import Path

from mmalign.schema import Manifest, image_problem, write_pairs

log = logging.getLogger(__name__)


def number_ids(rows: list[dict], prefix: str, source_ids: list[str]) -> None:
    """id = ``<prefix>-<source id>``, with ``-1``, ``-2``... for repeats (source ids are not always unique)."""
    seen: dict[str, int] = {}
    for row, source_id in zip(rows, source_ids):
        base = f"{prefix}-{source_id}"
        n = seen.get(base, 0)
        seen[base] = n + 1
        row["id"] = base if n == 0 else f"{base}-{n}"


def finish(
    rows: list[dict], manifest: Manifest, out_parquet: Path, manifest_path: Path, max_drop_rate: float
) -> Manifest:
    """Refuse (ValueError naming the source, the rate and the reasons) when too much was dropped, which means a
    wrong file or image folder rather than a few bad records; otherwise write the pairs and the manifest."""
    manifest.rows_kept = len(rows)
    manifest.extra.setdefault("max_drop_rate", max_drop_rate)
    if manifest.rows_read == 0:
        raise ValueError(f"{manifest.source}: no records read")
    if manifest.drop_rate > max_drop_rate:
        raise ValueError(
            f"{manifest.source}: dropped {manifest.drop_rate:.1%} of {manifest.rows_read} records "
            f"(max {max_drop_rate:.1%}); reasons {dict(manifest.dropped)}"
        )
    write_pairs(rows, out_parquet)
    Path(manifest_path).parent.mkdir(parents=True, exist_ok=True)
    manifest.write(manifest_path)
    log.info(
        "%s: kept %d of %d records (dropped %s) -> %s",
        manifest.source,
        manifest.rows_kept,
        manifest.rows_read,
        dict(manifest.dropped),
        out_parquet,
    )
    return manifest


def image_ok(path: Path, images_dir: Path | None = None) -> str | None:
    """None if the file is an image that decodes in full, inside ``images_dir`` when given (a record's path must
    not leave its source's image folder), else the drop reason."""
    if images_dir is not None and not confined(path, images_dir):
        return "image_outside_folder"
    return image_problem(path)


def confined(path: Path, folder: Path) -> bool:
    """Whether ``path`` (symlinks resolved) lies inside ``folder``: '../x' and absolute paths do not."""
    return Path(folder).resolve() in Path(path).resolve().parents


def drop_duplicate(row: dict | None, reason: str | None, seen: set) -> tuple[dict | None, str | None]:
    """A converted row whose content (image, prompt, chosen, rejected) was already kept becomes a counted
    'duplicate' drop; ``seen`` collects the kept contents."""
    if row is None:
        return row, reason
    content = (row["image"], row["prompt"], row["chosen"], row["rejected"])
    if content in seen:
        return None, "duplicate"
    seen.add(content)
    return row, None
