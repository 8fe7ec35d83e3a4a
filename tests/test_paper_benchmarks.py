"""The paper study's benchmark items, built for real through Snakemake (download rule on local mirrors, then
benchmark_items) from small fixtures in the Hub datasets' record formats."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import yaml

from test_benchmark_suite import image, png_bytes, write_parquet

REPO = Path(__file__).resolve().parents[1]


def test_paper_benchmark_items_from_mirrors(tmp_path):
    mirrors = tmp_path / "mirrors"
    write_parquet(
        mirrors / "llavaw" / "data" / "train-00000-of-00001.parquet",
        [
            {
                "question_id": 0,
                "question": "What is unusual?",
                "image": image(),
                "caption": "a man ironing on a taxi",
                "gpt_answer": "He irons clothes on a moving taxi.",
                "category": "complex",
                "image_id": "001",
            },
            {
                "question_id": 1,
                "question": "Describe it.",
                "image": image(False),
                "caption": "",
                "gpt_answer": "A cat.",
                "category": "detail",
                "image_id": "002",
            },
        ],
    )
    (mirrors / "llavaw" / "README.md").write_text("LLaVA-Bench (In-the-Wild)\n")  # named by allow_patterns
    (mirrors / "objhal").mkdir(parents=True)
    (mirrors / "objhal" / "obj_halbench_300_with_image.jsonl").write_text(
        json.dumps({"image_id": 5, "image": base64.b64encode(png_bytes()).decode(), "question": "Describe the image."})
        + "\n"
    )
    (mirrors / "coco").mkdir()
    (mirrors / "coco" / "instances_val2014.json").write_text(
        json.dumps({"categories": [{"id": 17, "name": "cat"}], "annotations": [{"image_id": 5, "category_id": 17}]})
    )
    (mirrors / "coco" / "captions_val2014.json").write_text(
        json.dumps({"annotations": [{"image_id": 5, "caption": "A kitten sleeps on a laptop."}]})
    )
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    for name, where in {
        "llava-bench-in-the-wild": "llavaw",
        "object-halbench": "objhal",
        "coco-annotations-2014": "coco",
    }.items():
        config["downloads"][name]["mirror"] = str(mirrors / where)
    configfile = tmp_path / "paper-mirrored.yaml"
    configfile.write_text(yaml.safe_dump(config))
    work = tmp_path / "work"
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(work),
        "--configfile",
        str(configfile),
        "--cores",
        "1",
        "results/benchmarks/llavaw/items.jsonl",
        "results/benchmarks/objhal/items.jsonl",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    llavaw = [json.loads(line) for line in open(work / "results/benchmarks/llavaw/items.jsonl")]
    assert [i["meta"]["context"] for i in llavaw] == ["a man ironing on a taxi"]
    manifest = json.loads((work / "results/benchmarks/llavaw/manifest.json").read_text())
    assert manifest["dropped"] == {"missing_image": 1} and manifest["rows_read"] == 2
    objhal = [json.loads(line) for line in open(work / "results/benchmarks/objhal/items.jsonl")]
    assert objhal[0]["meta"]["objects"] == ["cat", "laptop"] and Path(work / objhal[0]["image"]).is_file()
