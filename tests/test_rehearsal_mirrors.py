"""The rehearsal's mirrors (tests/rehearsal/mirrors.py) through the paper study's own download and readers.

paper.yaml is loaded as the Snakefile loads it, each download gets ``mirror:`` (rehearsal.mirrors.mirrored_downloads),
and each mirror is fetched as the download rule fetches it (workflow/scripts/download_hf.py: fetch_snapshot with the
entry's allow_patterns, then extract_archives). Then every real pair source and every benchmark of paper.yaml is built
with the library functions its rule calls (build_pairset, build_items), and must keep every record; the pair sets that
filter VLFeedback (where: chosen_model, prompts_from: povid) must keep enough candidates to scale down to."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from PIL import Image

from mmalign.config import apply_defaults, expand_sweeps
from mmalign.evaluate.benchmarks import get as benchmark_module
from mmalign.evaluate.coco_objects import mentioned_objects
from mmalign.evaluate.items import build_items
from mmalign.evaluate.snapshots import coco_truth
from mmalign.hub import extract_archives, fetch_snapshot, repo_type_of
from mmalign.pairs.build import DERIVED_KINDS, build_pairset
from mmalign.pairs.derived import candidate_pairs, subsample
from mmalign.schema import read_jsonl, read_pairs
from rehearsal.mirrors import (
    BASE_MODEL_DOWNLOAD,
    CORPUS_FILE,
    MAX_WORDS,
    all_texts,
    benchmark_size,
    mirrored_downloads,
    write_mirrors,
)

REPO = Path(__file__).resolve().parents[1]
N = 24  # write_mirrors' default
SOURCE_KINDS = ("povid", "vlfeedback", "rlhfv")  # the real pair sources (mmalign.pairs.sources)


def paper_config() -> dict:
    """config/paper.yaml as the Snakefile sees it (sweeps expanded, defaults applied)."""
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    expand_sweeps(config)
    apply_defaults(config)
    return config


PAPER = paper_config()
SOURCE_PAIRSETS = [name for name, spec in PAPER["pairsets"].items() if spec["kind"] in SOURCE_KINDS]
FILTERED_PAIRSETS = [
    name
    for name, spec in PAPER["pairsets"].items()
    if spec["kind"] in DERIVED_KINDS and (spec.get("where") or spec.get("prompts_from"))
]


def download(entry: dict, out: Path) -> Path:
    """What workflow/scripts/download_hf.py does with a downloads entry."""
    fetch_snapshot(
        repo_id=entry.get("repo_id", f"local:{entry.get('mirror')}"),
        revision=entry.get("revision", "local"),
        out_dir=out,
        repo_type=repo_type_of(entry),
        allow_patterns=entry.get("allow_patterns"),
        mirror=entry.get("mirror"),
        allow_unpinned="repo_id" not in entry,
    )
    extract_archives(out, entry.get("extract") or [])
    return out


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The mirrors, the config pointing at them, and every download fetched into resources/datasets/."""
    root = tmp_path_factory.mktemp("rehearsal")
    mirrors = write_mirrors(root / "mirrors", n=N, seed=0)
    config = paper_config()
    config["downloads"] = mirrored_downloads(config["downloads"], mirrors)
    datasets = root / "resources" / "datasets"
    for name in mirrors:
        download(config["downloads"][name], datasets / name)
    return SimpleNamespace(root=root, mirrors=mirrors, config=config, datasets=datasets)


@pytest.fixture(scope="module")
def pairs(study):
    """Every real-source pair set of paper.yaml, built as rule build_pairs / build_pairs_with_images builds it:
    {name: (pairs.parquet, manifest dict)}."""
    built = {}
    for name in SOURCE_PAIRSETS:
        spec = study.config["pairsets"][name]
        inputs = {"snapshot": study.datasets / spec["download"]}  # common.smk: pair_inputs
        if spec["kind"] != "rlhfv":  # RLHF-V's images are inside its parquet
            inputs["images"] = study.datasets / spec["images"]
        out = study.root / "results" / "pairs" / name
        build_pairset(
            spec=spec,
            inputs=inputs,
            pairs_path=out / "pairs.parquet",
            manifest_path=out / "manifest.json",
            seed=study.config["seed"],
            world_config=study.config.get("world", {}),
            name=name,
            outputs={"images": out / "images"},
        )
        built[name] = (out / "pairs.parquet", json.loads((out / "manifest.json").read_text()))
    return built


def test_every_dataset_download_is_mirrored_and_fetched_whole(study):
    """The models (the base model, the BDHS embedder) are built by tests/rehearsal/run.py, not here."""
    assert PAPER["base_model"]["download"] == BASE_MODEL_DOWNLOAD
    datasets = {name for name, entry in PAPER["downloads"].items() if repo_type_of(entry) == "dataset"}
    assert set(study.mirrors) == datasets and BASE_MODEL_DOWNLOAD not in datasets
    for name, mirror in study.mirrors.items():
        entry = study.config["downloads"][name]
        fetched, mirrored = files_under(study.datasets / name), files_under(mirror)
        assert mirrored and fetched >= mirrored, name  # allow_patterns keep every file of the mirror
        extracted = fetched - mirrored  # only VLFeedback's unzipped images come on top
        assert all(f.startswith("merged_images/") for f in extracted) and bool(extracted) == bool(entry.get("extract"))
        if "README.md" in (entry.get("allow_patterns") or []):
            assert "README.md" in mirrored, name
    assert (study.root / "mirrors" / CORPUS_FILE).is_file()  # beside the mirrors, in none of them


@pytest.mark.parametrize("name", SOURCE_PAIRSETS)
def test_pair_sources_keep_every_record(pairs, name):
    path, manifest = pairs[name]
    assert manifest["rows_read"] == N and manifest["rows_kept"] == N and manifest["dropped"] == {}, manifest
    frame = read_pairs(path)
    assert len(frame) == N and frame["id"].is_unique
    assert all(Path(p).is_file() for p in frame["image"])
    assert not frame["prompt"].str.contains("<image>").any()
    assert (frame["chosen"] != frame["rejected"]).all()


def test_vlfeedback_filters_of_paper_yaml_keep_at_least_8_pairs(study, pairs):
    assert FILTERED_PAIRSETS, "paper.yaml has pair sets that filter VLFeedback"
    kept = {}
    for name in FILTERED_PAIRSETS:
        spec = study.config["pairsets"][name]
        prompts = pairs[spec["prompts_from"]][0] if spec.get("prompts_from") else None
        candidates, filtered = candidate_pairs(
            read_pairs(pairs[spec["source"]][0]), spec, study.config["seed"], prompts
        )
        kept[name] = len(candidates)
        for key, allowed in (spec.get("where") or {}).items():
            assert {json.loads(m)[key] for m in candidates["meta"]} <= set(allowed)
    assert min(kept.values()) >= 8, kept
    manifest = pairs["vlfeedback"][1]
    assert {"gpt-4v", "llava-v1.5-7b"} <= set(manifest["extra"]["chosen_models"])


def test_subsamples_of_the_mirrored_sources_scale_down(study, pairs):
    """Every subsample of a real source, with n scaled to the mirror's size as the rehearsal scales it."""
    for name, spec in study.config["pairsets"].items():
        if spec["kind"] != "subsample" or spec["source"] not in pairs:
            continue
        source, manifest = pairs[spec["source"]]
        scaled = {**spec, "n": min(spec["n"], manifest["rows_kept"] // 2)}
        out = study.root / "results" / "pairs" / name
        out.mkdir(parents=True, exist_ok=True)
        made = subsample(scaled, source, out / "pairs.parquet", out / "manifest.json", study.config["seed"], name=name)
        assert made.rows_kept == scaled["n"] == len(read_pairs(out / "pairs.parquet"))


def truth_predictions(kind: str, items: list[dict]) -> list[str]:
    if kind == "objhal":  # a description naming every object present
        return [" and ".join(f"a {o}" for o in item["meta"]["objects"]) for item in items]
    return [item["answer"] for item in items]


@pytest.mark.parametrize("benchmark", list(PAPER["benchmarks"]))
def test_benchmarks_keep_every_item(study, benchmark):
    spec = study.config["benchmarks"][benchmark]
    inputs = {"snapshot": study.datasets / spec["download"]}  # common.smk: benchmark_inputs
    if spec.get("annotations"):
        inputs["annotations"] = study.datasets / spec["annotations"]
    out = study.root / "results" / "benchmarks" / benchmark
    kept = build_items(spec, inputs, out / "items.jsonl", out / "images", out / "manifest.json", study.config["seed"])
    manifest = json.loads((out / "manifest.json").read_text())
    items = read_jsonl(out / "items.jsonl")
    expected = 12 if spec["kind"] == "pope" else benchmark_size(N)
    assert kept == len(items) == manifest["rows_read"] == expected and manifest["dropped"] == {}, manifest
    assert len({i["id"] for i in items}) == len(items)
    assert all(Path(i["image"]).is_file() and i["question"] and i["answer"] for i in items)
    if spec["kind"] == "pope":
        assert manifest["extra"]["per_subset"] == {"adversarial": 4, "popular": 4, "random": 4}
        assert manifest["extra"]["duplicates_skipped"] == 0
        assert {i["answer"] for i in items} == {"yes", "no"}
    if spec["kind"] == "vqat":
        assert all(len(i["meta"]["answers"]) == 10 for i in items)
    if spec["kind"] == "llavaw":
        assert {i["subset"] for i in items} == {"conv", "detail", "complex"} and all(
            i["meta"]["context"] for i in items
        )
    if spec["kind"] in ("mmhal", "mmhalv"):
        assert all(i["meta"]["objects"] for i in items) and len({i["subset"] for i in items}) == 8
    if spec["kind"] == "objhal":
        truth = coco_truth(inputs["annotations"])
        captions = json.loads((inputs["annotations"] / "captions_val2014.json").read_text())["annotations"]
        for caption in captions:  # the captions name only objects that are there: CHAIR's truth is the instances'
            assert set(mentioned_objects(caption["caption"])) <= truth[caption["image_id"]]
    module = benchmark_module(spec["kind"])
    if not module.JUDGED:  # the reference answers read back as right with the benchmark's own scorer
        rows, _ = module.score(items, truth_predictions(spec["kind"], items))
        headline = {"objhal": "recall"}.get(spec["kind"], "accuracy")
        assert {r["metric"]: r["value"] for r in rows if r["subset"] == "all"}[headline] == 1.0


def test_same_seed_same_bytes_other_seed_other_data(study, tmp_path):
    again = write_mirrors(tmp_path / "again", n=N, seed=0)
    for name, mirror in study.mirrors.items():
        files = files_under(mirror)
        assert files == files_under(again[name]), name
        assert all((mirror / f).read_bytes() == (again[name] / f).read_bytes() for f in files), name
    assert all_texts(tmp_path / "again") == all_texts(study.root / "mirrors")
    other = write_mirrors(tmp_path / "other", n=N, seed=1)
    povid = "POVID_preference_data_for_VLLMs.json"
    assert (other["povid"] / povid).read_bytes() != (study.mirrors["povid"] / povid).read_bytes()


def test_images_vary_in_size_and_texts_are_short_sentences(study):
    sizes = {Image.open(p).size for p in study.mirrors["coco-train2014"].glob("*.jpg")}
    assert len(sizes) >= 4 and len({round(w / h, 2) for w, h in sizes}) >= 3, sizes
    pictures = [Image.open(p).convert("RGB") for p in sorted(study.mirrors["coco-train2014"].glob("*.jpg"))]
    assert len({p.tobytes() for p in pictures}) == len(pictures)
    assert all(len(set(p.getdata())) > 10 for p in pictures)  # shapes on the background, not a flat colour
    texts = all_texts(study.root / "mirrors")
    assert len(texts) > 200 and len(set(texts)) == len(texts)
    assert max(len(t.split()) for t in texts) <= MAX_WORDS
    records = json.loads((study.mirrors["povid"] / "POVID_preference_data_for_VLLMs.json").read_text())
    assert {r["conversations"][1]["value"] for r in records} <= set(texts)
    zipped = study.datasets / "vlfeedback" / "merged_images"
    assert all(Image.open(io.BytesIO(p.read_bytes())).format == "JPEG" for p in zipped.glob("*.jpg"))
