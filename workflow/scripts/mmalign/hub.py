"""Fetch a pinned Hugging Face repository (model or dataset) into a plain directory.

Three ways to get the files, tried in this order:

1. ``mirror`` names a local directory that already holds the repo's files (e.g. made earlier with
   ``hf download --local-dir``): its files are hard-linked (or copied) into ``out_dir``; the Hub is never contacted.
2. Offline mode (``HF_HUB_OFFLINE=1`` at call time): ``huggingface_hub.snapshot_download`` resolves the pinned
   commit from a Hugging Face cache (``cache_dir`` or ``HF_HUB_CACHE``) with ``local_files_only=True``, and the
   cached snapshot is materialised into ``out_dir``. (``snapshot_download`` ignores the cache when ``local_dir`` is
   given and offline, so this path must not pass ``local_dir``.)
3. Online: ``snapshot_download(..., local_dir=out_dir)`` downloads straight into ``out_dir``.

The revision must be a 40-hex commit sha unless ``allow_unpinned=True``: a branch name would make the workflow's
inputs drift silently. The token comes from ``HF_TOKEN`` and is never logged.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

from huggingface_hub import snapshot_download
from huggingface_hub.utils import filter_repo_objects

log = logging.getLogger(__name__)

_COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
# huggingface_hub keeps its own bookkeeping (download metadata, tree cache) under this folder of a local_dir.
_HF_META_DIR = ".cache"
DEFAULT_REPO_TYPE = "model"  # config downloads.<name>.repo_type


def repo_type_of(download: dict) -> str:
    """A ``downloads`` entry's repository type: ``model`` unless it says ``dataset``."""
    return download.get("repo_type", DEFAULT_REPO_TYPE)


def _is_true(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _offline() -> bool:
    """Offline mode as set *now*: huggingface_hub reads HF_HUB_OFFLINE only once, at import time."""
    from huggingface_hub import constants

    return _is_true(os.environ.get("HF_HUB_OFFLINE")) or bool(constants.HF_HUB_OFFLINE)


def _repo_files(root: Path) -> list[str]:
    """Relative POSIX paths of the repo files under root, leaving out huggingface_hub's own .cache folder."""
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] == _HF_META_DIR or path.is_dir():
            continue
        files.append(rel.as_posix())
    return files


def _materialise(src: Path, dst: Path, allow_patterns: list[str] | None) -> None:
    """Hard-link (same filesystem) or copy every selected file of src into dst, following symlinks.

    An HF cache snapshot is a tree of symlinks into ``blobs/``; linking the resolved blob keeps multi-GB weights
    from being copied. Note that hard links share the inode: do not edit files in dst in place.
    """
    for rel in filter_repo_objects(_repo_files(src), allow_patterns=allow_patterns):
        source = (src / rel).resolve()
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() or target.is_symlink():
            target.unlink()
        try:
            os.link(source, target)
        except OSError:  # other filesystem, or links not allowed
            shutil.copy2(source, target)


def fetch_snapshot(
    repo_id: str,
    revision: str,
    out_dir: str | Path,
    repo_type: str = DEFAULT_REPO_TYPE,
    allow_patterns: list[str] | None = None,
    mirror: str | None = None,
    *,
    allow_unpinned: bool = False,
    cache_dir: str | Path | None = None,
) -> Path:
    """Put a complete copy of ``repo_id`` at ``revision`` into ``out_dir`` and return ``out_dir``.

    Raises ValueError for an unpinned revision (unless ``allow_unpinned``), FileNotFoundError for a missing
    mirror directory, and RuntimeError when nothing was fetched (e.g. ``allow_patterns`` matched no file).
    """
    if not _COMMIT_SHA.fullmatch(revision or ""):
        if not allow_unpinned:
            raise ValueError(
                f"{repo_type} {repo_id}: revision {revision!r} is not a 40-hex commit sha; pin the commit "
                "(or pass allow_unpinned=True for exploratory runs)"
            )
        log.warning("%s %s: using unpinned revision %r; results may not be reproducible", repo_type, repo_id, revision)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    token = os.environ.get("HF_TOKEN") or None  # passed through, never logged
    # Read HF_HUB_CACHE at call time too (huggingface_hub's default was frozen at import).
    cache = cache_dir or os.environ.get("HF_HUB_CACHE") or None

    if mirror:
        mirror_dir = Path(mirror)
        if not mirror_dir.is_dir():
            raise FileNotFoundError(f"{repo_type} {repo_id}: mirror directory {str(mirror_dir)!r} does not exist")
        log.info(
            "%s %s: copying from local mirror %s; revision %s is not verified there",
            repo_type,
            repo_id,
            mirror_dir,
            revision,
        )
        _materialise(mirror_dir, out, allow_patterns)
        how = f"mirror {mirror_dir}"
    elif _offline():
        snapshot = snapshot_download(
            repo_id=repo_id,
            revision=revision,
            repo_type=repo_type,
            cache_dir=cache,
            token=token,
            allow_patterns=allow_patterns,
            local_files_only=True,
        )
        _materialise(Path(snapshot), out, allow_patterns)
        how = f"offline cache {snapshot}"
    else:
        snapshot_download(
            repo_id=repo_id,
            revision=revision,
            repo_type=repo_type,
            cache_dir=cache,
            token=token,
            allow_patterns=allow_patterns,
            local_dir=out,
        )
        how = "hub download"

    files = _repo_files(out)
    if not files:
        raise RuntimeError(
            f"{repo_type} {repo_id}@{revision}: no files fetched into {out} (allow_patterns={allow_patterns!r})"
        )
    total = sum((out / f).stat().st_size for f in files)
    log.info(
        "fetched %s %s@%s via %s -> %s: %d files, %d bytes", repo_type, repo_id, revision, how, out, len(files), total
    )
    return out


def extract_archives(out_dir: str | Path, names: list[str]) -> list[Path]:
    """Unzip each named archive of a fetched snapshot next to it (VLFeedback ships its images as
    ``merged_images.zip``). Members that would land outside ``out_dir`` are refused; an archive already extracted
    (every member present with its size) is left alone, so a rerun does not rewrite gigabytes."""
    import zipfile

    out = Path(out_dir).resolve()
    done = []
    for name in names:
        archive = out / name
        if not archive.is_file():
            raise FileNotFoundError(f"{archive}: archive to extract is not in the snapshot (check allow_patterns)")
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            for member in members:
                target = (out / member.filename).resolve()
                if out not in target.parents:
                    raise ValueError(f"{archive}: member {member.filename!r} would be written outside {out}")
            if all((out / m.filename).is_file() and (out / m.filename).stat().st_size == m.file_size for m in members):
                log.info("%s: already extracted", archive)
            else:
                zf.extractall(out)
                log.info("%s: extracted %d files", archive, len(members))
        done.append(archive)
    return done
