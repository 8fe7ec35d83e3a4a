"""fetch_snapshot without network: the real huggingface_hub.snapshot_download resolving a cache offline, a local
mirror, the pinned-revision rule, and the token staying out of the logs.

The fake cache follows the layout huggingface_hub 2.4 resolves offline (``_snapshot_download.py``: with
``local_files_only`` it reads ``<cache>/<repo_folder_name>/refs/<revision>`` for a branch, then returns
``snapshots/<commit>`` if it exists; ``file_download.repo_folder_name`` gives ``models--org--name`` or
``datasets--org--name``). Snapshot files are symlinks into ``blobs/``, as in a real cache.
"""

from __future__ import annotations

import json
import logging
import os

import pytest

from mmalign.hub import fetch_snapshot

SHA = "0123456789abcdef0123456789abcdef01234567"
TOKEN = "hf_SECRETsentinel0000000000000000000"
FILES = {
    "config.json": json.dumps({"model_type": "llava_next"}),
    "preprocessor_config.json": json.dumps({"image_mean": [0.5, 0.5, 0.5]}),
    "model.safetensors": "not really weights",
}


def make_cache(root, repo_id="org/name", repo_type="model", files=FILES, sha=SHA):
    repo = root / f"{repo_type}s--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)  # no trailing newline: snapshot_download does not strip it
    snap = repo / "snapshots" / sha
    snap.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for i, (name, text) in enumerate(files.items()):
        blob = repo / "blobs" / f"blob{i:04d}"
        blob.write_text(text)
        link = snap / name
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    return repo


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Offline mode with a cache the test owns; HF_HOME too, so no real user cache or token file is read."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    cache = tmp_path / "hf_cache"
    cache.mkdir()
    return cache


def test_offline_cache_resolves_through_snapshot_download(offline, tmp_path):
    make_cache(offline)
    out = fetch_snapshot("org/name", SHA, tmp_path / "out", cache_dir=offline)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    for name, text in FILES.items():
        assert not (out / name).is_symlink()  # a plain directory, not links into the cache tree
        assert (out / name).read_text() == text


def test_offline_cache_from_env_and_dataset_repo_and_patterns(offline, tmp_path, monkeypatch):
    files = {"data/test-00000-of-00001.parquet": "pq", "README.md": "card", "other.bin": "x"}
    make_cache(offline, repo_id="lmms-lab/POPE", repo_type="dataset", files=files)
    monkeypatch.setenv("HF_HUB_CACHE", str(offline))  # read at call time, not at huggingface_hub import
    out = fetch_snapshot(
        "lmms-lab/POPE", SHA, tmp_path / "pope", repo_type="dataset", allow_patterns=["data/*", "README.md"]
    )
    got = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert got == ["README.md", "data/test-00000-of-00001.parquet"]


def test_offline_branch_needs_allow_unpinned_then_uses_refs(offline, tmp_path):
    make_cache(offline)
    with pytest.raises(ValueError, match="not a 40-hex commit sha"):
        fetch_snapshot("org/name", "main", tmp_path / "out", cache_dir=offline)
    out = fetch_snapshot("org/name", "main", tmp_path / "out", cache_dir=offline, allow_unpinned=True)
    assert (out / "config.json").read_text() == FILES["config.json"]


def test_offline_missing_commit_is_an_error(offline, tmp_path):
    make_cache(offline)
    with pytest.raises(Exception, match="[Cc]annot find an appropriate cached snapshot"):
        fetch_snapshot("org/name", "f" * 40, tmp_path / "out", cache_dir=offline)


@pytest.mark.parametrize("revision", ["main", "v1.0", "0123abc", SHA.upper(), SHA + "0", "", None])
def test_unpinned_revisions_rejected(revision, tmp_path):
    with pytest.raises(ValueError, match="40-hex commit sha"):
        fetch_snapshot("org/name", revision, tmp_path / "out")


@pytest.mark.parametrize("revision", [None, "not-a-pin", SHA])
def test_a_mirror_needs_no_pin(revision, tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "data").mkdir(parents=True)
    (mirror / "data" / "test-0.parquet").write_bytes(b"rows")
    out = fetch_snapshot("org/name", revision, tmp_path / "out", repo_type="dataset", mirror=str(mirror))
    assert (out / "data" / "test-0.parquet").read_bytes() == b"rows"


def test_a_mirror_missing_a_pattern_names_download_pattern_and_directory(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "data").mkdir(parents=True)
    (mirror / "data" / "test-0.parquet").write_bytes(b"rows")
    with pytest.raises(FileNotFoundError) as err:
        fetch_snapshot(
            "lmms-lab/GQA",
            None,
            tmp_path / "out",
            repo_type="dataset",
            allow_patterns=["data/*", "testdev_balanced_images/*"],
            mirror=str(mirror),
            name="gqa",
        )
    message = str(err.value)
    assert "'gqa'" in message and "'testdev_balanced_images/*'" in message and str(mirror) in message
    assert not (tmp_path / "out").exists()  # refused before anything was copied


def test_fetch_download_writes_a_manifest_with_hashes_and_processor_settings(tmp_path):
    import hashlib

    from mmalign.hub import fetch_download

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "config.json").write_text("{}")
    (mirror / "processor_config.json").write_text(json.dumps({"image_token": "<image>"}))
    download = {"repo_type": "model", "repo_id": "llava-hf/llava-v1.6-vicuna-7b-hf", "mirror": str(mirror)}
    settings = {"patch_size": 14, "num_additional_image_tokens": 1}
    manifest = fetch_download("llava", download, tmp_path / "out", tmp_path / "out.manifest.json", processor=settings)
    on_disk = json.loads((tmp_path / "out.manifest.json").read_text())
    assert on_disk == manifest and manifest["source"] == f"mirror {mirror}" and not manifest["revision_verified"]
    processor = json.loads((tmp_path / "out" / "processor_config.json").read_text())
    assert processor == {"image_token": "<image>", **settings}
    # the mirror's own file is untouched although the copy was a hard link
    assert json.loads((mirror / "processor_config.json").read_text()) == {"image_token": "<image>"}
    files = {f["path"]: f for f in manifest["files"]}
    assert set(files) == {"config.json", "processor_config.json"}
    assert files["config.json"]["sha256"] == hashlib.sha256(b"{}").hexdigest()
    assert (
        files["processor_config.json"]["sha256"]
        == hashlib.sha256((tmp_path / "out" / "processor_config.json").read_bytes()).hexdigest()
    )


def test_mirror_copies_files_and_skips_hf_metadata(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "sub").mkdir(parents=True)
    (mirror / "config.json").write_text("{}")
    (mirror / "sub" / "weights.safetensors").write_bytes(b"\0" * 10)
    (mirror / ".cache" / "huggingface").mkdir(parents=True)  # left by `hf download --local-dir`
    (mirror / ".cache" / "huggingface" / "x.metadata").write_text("meta")
    out = fetch_snapshot("org/name", SHA, tmp_path / "out", mirror=str(mirror))
    got = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert got == ["config.json", "sub/weights.safetensors"]
    assert (out / "sub" / "weights.safetensors").read_bytes() == b"\0" * 10


def test_missing_mirror_names_the_path(tmp_path):
    missing = tmp_path / "no" / "such" / "mirror"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        fetch_snapshot("org/name", SHA, tmp_path / "out", mirror=str(missing))


def test_nothing_matched_is_an_error(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="no file in mirror directory .* matches allow_patterns entry"):
        fetch_snapshot("org/name", SHA, tmp_path / "out", allow_patterns=["*.safetensors"], mirror=str(mirror))
    (mirror / "config.json").unlink()  # an empty mirror with no patterns: nothing fetched at all
    with pytest.raises(RuntimeError, match="no files fetched"):
        fetch_snapshot("org/name", SHA, tmp_path / "out", mirror=str(mirror))


def test_token_never_logged(offline, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    make_cache(offline)
    caplog.set_level(logging.DEBUG)  # everything, huggingface_hub's own loggers included
    fetch_snapshot("org/name", SHA, tmp_path / "a", cache_dir=offline)
    mirror = tmp_path / "a"
    fetch_snapshot("org/name", SHA, tmp_path / "b", mirror=str(mirror))
    with pytest.raises(ValueError):
        fetch_snapshot("org/name", "main", tmp_path / "c", cache_dir=offline)
    assert "fetched model org/name@" in caplog.text and "3 files" in caplog.text
    assert TOKEN not in caplog.text
    assert TOKEN[3:12] not in caplog.text  # nor a fragment of it


def test_extract_archives_unzips_once_and_refuses_escapes(tmp_path):
    import zipfile

    from mmalign.hub import extract_archives

    with zipfile.ZipFile(tmp_path / "merged_images.zip", "w") as zf:
        zf.writestr("merged_images/a.jpg", b"abc")
    extract_archives(tmp_path, ["merged_images.zip"])
    assert (tmp_path / "merged_images" / "a.jpg").read_bytes() == b"abc"
    stamp = (tmp_path / "merged_images" / "a.jpg").stat().st_mtime_ns
    extract_archives(tmp_path, ["merged_images.zip"])  # already there: not rewritten
    assert (tmp_path / "merged_images" / "a.jpg").stat().st_mtime_ns == stamp
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("../outside.txt", b"x")
    with pytest.raises(ValueError, match="outside"):
        extract_archives(tmp_path, ["evil.zip"])
    with pytest.raises(FileNotFoundError, match="allow_patterns"):
        extract_archives(tmp_path, ["missing.zip"])


def test_no_placeholder_pins_anywhere():
    """Every Hub pin in the configs is a commit; the word for an unfilled pin appears in no tracked file."""
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    word = "PLACE" + "HOLDER"  # spelled apart so that this file does not match itself
    found = subprocess.run(["git", "grep", "-l", word], cwd=repo, capture_output=True, text=True).stdout.split()
    assert found == []


def test_an_archive_that_would_unpack_far_beyond_its_size_is_refused(tmp_path):
    import zipfile

    from mmalign.hub import extract_archives

    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("merged_images/zeros.jpg", b"\0" * 2_000_000)  # 2 MB of zeros compress to ~2 KB
    with pytest.raises(ValueError, match=r"would unpack to 2,000,000 bytes, more than 20 times"):
        extract_archives(tmp_path, ["bomb.zip"])
    assert not (tmp_path / "merged_images").exists()
