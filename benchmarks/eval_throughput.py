"""Evaluation throughput of the default study: samples per second per benchmark (generation, judging, and
the whole job with Python start-up and model loading), and the cost of evaluating one variant on all of them.

    .venv/bin/python benchmarks/eval_throughput.py                 # builds what the base model's evaluation needs
    .venv/bin/python benchmarks/eval_throughput.py --from DIR      # read a finished run (every variant) instead

Without ``--from``, runs Snakemake in a fresh directory (or ``--keep DIR``) for the base model's evaluation on
every benchmark of the config, one job at a time (``--cores 1``), so job times are not inflated by a parallel job.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def run_base_evaluations(workdir: Path, configfile: str, cores: str) -> float:
    config = yaml.safe_load(Path(configfile).read_text())
    targets = [f"results/eval/base/{b}/metrics.json" for b in config["benchmarks"]]
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        configfile,
        "--cores",
        cores,
        *targets,
    ]
    start = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        print(out.stderr[-4000:])
        raise SystemExit(f"the evaluation failed (exit {out.returncode})")
    return time.time() - start


def tsv_seconds(tsv: Path) -> float | None:
    return float(tsv.read_text().splitlines()[1].split("\t")[0]) if tsv.exists() else None


def job_seconds(workdir: Path, variant: str, benchmark: str) -> float | None:
    """The `evaluate` job of one (variant, benchmark) (evaluation.jobs: per_benchmark), else None."""
    return tsv_seconds(workdir / "results" / "timing" / "evaluate" / variant / f"{benchmark}.tsv")


def variant_job_seconds(workdir: Path, variant: str) -> float | None:
    """The `evaluate_variant` job of one variant, every benchmark in it (evaluation.jobs: per_variant), else None."""
    return tsv_seconds(workdir / "results" / "timing" / "evaluate" / f"{variant}.tsv")


def report(workdir: Path) -> None:
    rows = []
    for path in sorted((workdir / "results" / "eval").glob("*/*/metrics.json")):
        m = json.loads(path.read_text())
        rows.append(
            (
                m["variant"],
                m["benchmark"],
                m["items"],
                m["seconds"],
                m.get("judge_seconds", 0.0),
                job_seconds(workdir, m["variant"], m["benchmark"]),
            )
        )
    if not rows:
        raise SystemExit(f"no results/eval/*/*/metrics.json under {workdir}")
    print(
        f"{'variant':24s} {'benchmark':9s} {'items':>6s} {'gen s':>7s} {'judge s':>8s} {'items/s':>8s} "
        f"{'job s':>6s} {'job items/s':>11s}"
    )
    per_variant: dict[str, list[float]] = {}
    for variant, benchmark, items, gen, judge, job in rows:
        rate = items / (gen + judge) if gen + judge else float("nan")
        job_rate = f"{items / job:11.1f}" if job else f"{'-':>11s}"
        print(
            f"{variant:24s} {benchmark:9s} {items:6d} {gen:7.2f} {judge:8.2f} {rate:8.1f} "
            f"{job if job else float('nan'):6.1f} {job_rate}"
        )
        per_variant.setdefault(variant, []).append(job or gen + judge)
    for variant, seconds in per_variant.items():
        whole = variant_job_seconds(workdir, variant)
        if whole is not None:  # one evaluate_variant job: start-up and model loading paid once
            print(
                f"{variant}: {len(seconds)} benchmarks in one job of {whole:.1f} s "
                f"({sum(seconds):.1f} s of generation and judging)"
            )
        else:
            print(
                f"{variant}: {len(seconds)} benchmarks, {sum(seconds):.1f} s of evaluation jobs in all "
                f"(one core each; ~{sum(seconds) / 2:.1f} s on 2 cores)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="source", help="a finished run's directory to read instead of running")
    parser.add_argument("--configfile", default=str(REPO / "config" / "config.yaml"))
    parser.add_argument("--cores", default="1")
    parser.add_argument("--keep", help="run in this directory (kept) instead of a temporary one")
    args = parser.parse_args()
    if args.source:
        workdir = Path(args.source)
    else:
        workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mmalign-evalspeed-"))
        total = run_base_evaluations(workdir, args.configfile, args.cores)
        print(f"world, base model, items and base evaluations: {total:.1f} s wall time ({workdir})")
    report(workdir)


if __name__ == "__main__":
    main()
