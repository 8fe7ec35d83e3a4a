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
inputs drift silently. A mirror needs no pin (its files are what they are; the manifest records their hashes), but
each of the entry's ``allow_patterns`` must match a file there. The token comes from ``HF_TOKEN`` and is never
logged. ``fetch_download`` is the whole ``downloads`` entry as the download rules run it, manifest included.
"""

from __future__ import annotations

import hashlib
import json
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


def is_pinned(revision: str | None) -> bool:
    """Whether a revision is a full 40-hex commit sha (a branch or tag would let the inputs drift)."""
    return bool(_COMMIT_SHA.fullmatch(revision or ""))


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
    revision: str | None,
    out_dir: str | Path,
    repo_type: str = DEFAULT_REPO_TYPE,
    allow_patterns: list[str] | None = None,
    mirror: str | None = None,
    *,
    allow_unpinned: bool = False,
    cache_dir: str | Path | None = None,
    name: str | None = None,
) -> Path:
    """Put a complete copy of ``repo_id`` at ``revision`` into ``out_dir`` and return ``out_dir``.

    Raises ValueError for an unpinned revision (unless ``allow_unpinned``, or a mirror is given),
    FileNotFoundError for a missing mirror directory or a pattern no mirror file matches, and RuntimeError when
    nothing was fetched (e.g. ``allow_patterns`` matched no file). ``name`` (the downloads entry) is in messages.
    """
    what = f"download {name!r} ({repo_type} {repo_id})" if name else f"{repo_type} {repo_id}"
    if mirror:
        mirror_dir = Path(mirror)
        if not mirror_dir.is_dir():
            raise FileNotFoundError(f"{what}: mirror directory {str(mirror_dir)!r} does not exist")
        check_patterns(what, _repo_files(mirror_dir), allow_patterns, f"mirror directory {mirror_dir}")
    elif not is_pinned(revision):
        if not allow_unpinned:
            raise ValueError(
                f"{what}: revision {revision!r} is not a 40-hex commit sha; pin the commit, or give a local "
                "`mirror:` (or pass allow_unpinned=True for exploratory runs)"
            )
        log.warning("%s: using unpinned revision %r; results may not be reproducible", what, revision)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    token = os.environ.get("HF_TOKEN") or None  # passed through, never logged
    # Read HF_HUB_CACHE at call time too (huggingface_hub's default was frozen at import).
    cache = cache_dir or os.environ.get("HF_HUB_CACHE") or None

    if mirror:
        log.info("%s: copying from local mirror %s; revision %s is not verified there", what, mirror_dir, revision)
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
        raise RuntimeError(f"{what}@{revision}: no files fetched into {out} (allow_patterns={allow_patterns!r})")
    total = sum((out / f).stat().st_size for f in files)
    log.info(
        "fetched %s %s@%s via %s -> %s: %d files, %d bytes", repo_type, repo_id, revision, how, out, len(files), total
    )
    return out


def check_patterns(what: str, files: list[str], allow_patterns: list[str] | None, where: str) -> None:
    """Each pattern must select at least one file: a mirror that lacks what the config names is incomplete."""
    for pattern in allow_patterns or []:
        if not list(filter_repo_objects(files, allow_patterns=[pattern])):
            raise FileNotFoundError(f"{what}: no file in {where} matches allow_patterns entry {pattern!r}")


def file_manifest(root: str | Path) -> list[dict]:
    """Path, size and sha256 of every file of a fetched snapshot: what a job read, checkable later."""
    root = Path(root)
    entries = []
    for rel in _repo_files(root):
        with open(root / rel, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        entries.append({"path": rel, "bytes": (root / rel).stat().st_size, "sha256": digest})
    return entries


def write_processor_settings(model_dir: str | Path, settings: dict) -> None:
    """Merge settings into the model's processor_config.json. The file may be a hard link into a mirror or the
    Hugging Face cache (see _materialise), so it is replaced, never edited in place."""
    path = Path(model_dir) / "processor_config.json"
    current = json.loads(path.read_text()) if path.is_file() else {}
    merged = {**current, **settings}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    log.info("%s: processor settings %s written into processor_config.json", model_dir, sorted(settings))


def fetch_download(
    name: str, download: dict, out_dir: str | Path, manifest_path: str | Path, processor: dict | None = None
) -> dict:
    """Run one ``downloads`` entry: fetch (Hub, offline cache or mirror), unzip its ``extract`` archives, apply
    ``processor`` settings (base model only), and write a manifest of where the files came from and their
    hashes. A local-only entry (``mirror`` without ``repo_id``) has nothing on the Hub to pin."""
    mirror = download.get("mirror")
    repo_id = download.get("repo_id")
    fetch_snapshot(
        repo_id=repo_id or f"local:{mirror}",
        revision=download.get("revision"),
        out_dir=out_dir,
        repo_type=repo_type_of(download),
        allow_patterns=download.get("allow_patterns"),
        mirror=mirror,
        name=name,
    )
    extract_archives(out_dir, download.get("extract") or [])
    if processor:
        write_processor_settings(out_dir, processor)
    manifest = {
        "download": name,
        "repo_id": repo_id,
        "repo_type": repo_type_of(download),
        "revision": download.get("revision"),
        # a mirror is read as it is: the revision (if any) is the one it is said to hold, not one that was checked
        "source": f"mirror {mirror}" if mirror else "hub",
        "revision_verified": not mirror,
        "allow_patterns": download.get("allow_patterns"),
        "processor_settings": processor or None,
        "files": file_manifest(out_dir),
    }
    Path(manifest_path).write_text(json.dumps(manifest, indent=1) + "\n")
    log.info("%s: %d files, manifest %s", name, len(manifest["files"]), manifest_path)
    return manifest


# An archive whose members would take more than this many times its own size is refused (a zip bomb, or a
# corrupt directory): VLFeedback's merged_images.zip holds JPEGs, which hardly compress at all.
MAX_EXPANSION = 20


def extract_archives(out_dir: str | Path, names: list[str], max_expansion: float = MAX_EXPANSION) -> list[Path]:
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
            unpacked = sum(m.file_size for m in members)
            if unpacked > max_expansion * max(1, archive.stat().st_size):
                raise ValueError(
                    f"{archive}: would unpack to {unpacked:,} bytes, more than {max_expansion:g} times its own "
                    f"{archive.stat().st_size:,} bytes; refused (a corrupt or malicious archive?)"
                )
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
