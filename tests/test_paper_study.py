"""The paper study's data stage, run for real through Snakemake on local mirrors shaped like the Hub repos:
the base-model download rule, the POVID pair set (with its drop-rate bound) and the POPE items."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from test_sources_pope import ROWS, write_parquet
from test_sources_povid import FIXTURE, IMAGES

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def mirrored_paper_config(tmp_path, tiny_model):
    mirrors = tmp_path / "mirrors"
    shutil.copytree(tiny_model[0], mirrors / "llava")  # stands in for the LLaVA-1.6 snapshot
    (mirrors / "povid").mkdir(parents=True)
    shutil.copy(FIXTURE, mirrors / "povid" / FIXTURE.name)
    (mirrors / "povid" / "README.md").write_text("POVID\n")
    (mirrors / "coco").mkdir()
    for name in IMAGES:
        Image.new("RGB", (8, 6), (10, 100, 200)).save(mirrors / "coco" / name, "JPEG")
    write_parquet(mirrors / "pope" / "data" / "test-00000-of-00001.parquet", ROWS)
    (mirrors / "pope" / "README.md").write_text("POPE\n")  # paper.yaml's allow_patterns name it
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    for name, where in {
        "llava-v1.6-vicuna-7b": "llava",
        "povid": "povid",
        "coco-train2014": "coco",
        "pope": "pope",
    }.items():
        config["downloads"][name]["mirror"] = str(mirrors / where)
    path = tmp_path / "paper-mirrored.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, config


def snakemake(workdir, configfile, *targets):
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(configfile),
        "--cores",
        "1",
        *targets,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_paper_data_stage_runs_on_local_mirrors(tmp_path, mirrored_paper_config):
    configfile, config = mirrored_paper_config
    work = tmp_path / "work"
    out = snakemake(work, configfile, "resources/models/llava-v1.6-vicuna-7b", "results/benchmarks/pope/items.jsonl")
    assert out.returncode == 0, out.stderr[-4000:]
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(work / "resources/models/llava-v1.6-vicuna-7b").model_type == "llava"
    items = [json.loads(line) for line in open(work / "results/benchmarks/pope/items.jsonl")]
    assert {it["subset"] for it in items} <= {"random", "popular", "adversarial"} and len(items) == 4
    manifest = json.loads((work / "results/benchmarks/pope/manifest.json").read_text())
    assert manifest["dropped"] == {"missing_answer": 1, "missing_image": 1}

    # the fixture has 5 malformed POVID records of 8: paper.yaml's 2% bound stops the rule, naming the source
    out = snakemake(work, configfile, "results/pairs/povid/pairs.parquet")
    assert out.returncode != 0
    assert "povid" in out.stderr and "62.5%" in out.stderr
    config["pairsets"]["povid"]["max_drop_rate"] = 0.7
    configfile.write_text(yaml.safe_dump(config))
    out = snakemake(work, configfile, "results/pairs/povid/pairs.parquet")
    assert out.returncode == 0, out.stderr[-4000:]
    manifest = json.loads((work / "results/pairs/povid/manifest.json").read_text())
    assert manifest["rows_read"] == 8 and manifest["rows_kept"] == 3
