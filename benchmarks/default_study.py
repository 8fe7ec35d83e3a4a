"""The default study from scratch in a fresh directory, timed: total wall time, the time of every rule summed
over its jobs, the processes started, and how far the training steps are from the speed of their arithmetic.
Then a no-op rerun (``snakemake -n`` with everything built), timed too.

    .venv/bin/python benchmarks/default_study.py [--cores 2] [--keep DIR] [--json OUT.json]
    .venv/bin/python benchmarks/default_study.py --configfile config/config.yaml config/overlays/one-seed.yaml
    .venv/bin/python benchmarks/default_study.py --from DIR      # read a finished run instead of running one

Run it on an idle machine: on 2 cores anything else running changes every figure.

- Rule times come from the Snakemake log (each job's start and finish stamps, 1 s resolution), so every rule is
  covered, including those that cannot have a ``benchmark:`` file (cached rules).
- Processes: Snakemake starts one Python process per job that runs a script (every job but ``all``).
- Arithmetic: each offline run's FLOPs (``arithmetic.flops`` in its ``train_metrics.json``: one batch counted
  with torch's FlopCounterMode after training, scaled by the positions of every step, mmalign.train.arithmetic),
  divided by this machine's measured matmul rate on one core (a 512x512 float32 matmul, the best of several);
  the ratio is the runs' training wall time over that. Online runs generate inside their steps and are not
  counted.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
JOB_START = re.compile(r"^(?:local)?rule (\w+):$")
JOB_ID = re.compile(r"^\s+jobid: (\d+)$")
JOB_END = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")


def snakemake(workdir: Path, configfiles: list[str], *args: str) -> list[str]:
    """The study's Snakemake command; later config files are overlays on the first (docs/configuration.md)."""
    files = [str(Path(f).resolve()) for f in configfiles]
    return [
        sys.executable, "-m", "snakemake", *args, "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--configfile", *files,
    ]  # fmt: skip


def job_times(log_text: str) -> dict[str, list[float]]:
    """Seconds of every job, by rule, from a Snakemake log's start and finish stamps."""
    stamp, started, rule_of, times = None, {}, {}, defaultdict(list)
    pending_rule = None
    for line in log_text.splitlines():
        if m := STAMP.match(line.strip()):
            stamp = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
        elif m := JOB_START.match(line):
            pending_rule = m.group(1)
        elif (m := JOB_ID.match(line)) and pending_rule:
            started[m.group(1)], rule_of[m.group(1)], pending_rule = stamp, pending_rule, None
        elif m := JOB_END.match(line):
            job = m.group(1)
            if job in started:
                times[m.group(2)].append((stamp - started.pop(job)).total_seconds())
    return dict(times)


def matmul_rate(size: int = 512, repeats: int = 20) -> float:
    """FLOP/s of a float32 matmul on one core (the best of several timings)."""
    import torch

    torch.set_num_threads(1)
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(5):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def training_arithmetic(workdir: Path, rate: float) -> dict:
    # every run: a replicated variant's runs are results/runs/<variant>/seed<k>/
    runs = [json.loads(p.read_text()) for p in sorted((workdir / "results" / "runs").rglob("train_metrics.json"))]
    counted = [r for r in runs if (r.get("arithmetic") or {}).get("flops")]
    wall = sum(r["train_seconds"] for r in counted)
    flops = sum(r["arithmetic"]["flops"] for r in counted)
    positions = sum(r["arithmetic"]["positions"] for r in counted)
    # the padded positions (computed, thrown away), where the runs recorded them (since 2026-12-08)
    padded = [r["arithmetic"] for r in counted if r["arithmetic"].get("padding_share") is not None]
    padding = sum(a["padding_share"] * a["positions"] for a in padded)
    return {
        "runs": len(runs),
        "offline_runs_counted": len(counted),
        "steps": sum(r["steps"] for r in counted),
        "train_seconds": round(wall, 1),
        "tflop": round(flops / 1e12, 3),
        "arithmetic_seconds": round(flops / rate, 1),
        "wall_over_arithmetic": round(wall / (flops / rate), 2) if flops else None,
        "positions": positions,
        "padding_share": round(padding / sum(a["positions"] for a in padded), 4) if padded else None,
        # where each run's reference log-probs came from: a pair set's artifact, its own pre-pass, or inline
        "reference_logps": {
            k: sum(r.get("reference_logps") == k for r in runs) for k in {r.get("reference_logps") for r in runs}
        },
    }


def warm_started(workdir: Path) -> int:
    """Jobs that ran in a child of a warm interpreter (mmalign/prefork.py writes one line to the job's log)."""
    from mmalign.prefork import USAGE_LINE

    return sum(USAGE_LINE in log.read_text(errors="replace") for log in (workdir / "logs").rglob("*.log"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", default="2")
    parser.add_argument(
        "--configfile", nargs="+", default=[str(REPO / "config" / "config.yaml")], help="the study, then overlays"
    )
    parser.add_argument("--keep", help="run in this directory (kept) instead of a temporary one")
    parser.add_argument("--from", dest="done", help="a finished run's directory: report it, run nothing")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    workdir = Path(args.done or args.keep or tempfile.mkdtemp(prefix="mmalign-study-"))
    total = None
    if not args.done:
        start = time.time()
        out = subprocess.run(snakemake(workdir, args.configfile, "--cores", args.cores), capture_output=True, text=True)
        total = time.time() - start
        if out.returncode:
            print(out.stderr[-4000:])
            raise SystemExit(f"the study failed (exit {out.returncode})")
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    times: dict[str, list[float]] = defaultdict(list)
    for log in logs:  # a run resumed in the same directory: every log's jobs
        for rule, seconds in job_times(log.read_text()).items():
            times[rule] += seconds
    start = time.time()
    noop = subprocess.run(snakemake(workdir, args.configfile, "-n", "--quiet"), capture_output=True, text=True)
    noop_seconds = time.time() - start
    rate = matmul_rate()
    arithmetic = training_arithmetic(workdir, rate)
    jobs = sum(len(v) for r, v in times.items() if r != "all")
    warm = warm_started(workdir)
    figures = {
        "workdir": str(workdir),
        "cores": args.cores,
        "wall_seconds": round(total, 1) if total is not None else None,
        "jobs": jobs,
        "processes_started": jobs,  # one Python process per job (rule `all` runs nothing)
        "jobs_forked_from_warm_interpreter": warm,  # their imports were done once (mmalign/prefork.py)
        "rule_seconds": {r: round(sum(v), 1) for r, v in sorted(times.items(), key=lambda kv: -sum(kv[1]))},
        "rule_jobs": {r: len(v) for r, v in times.items()},
        "noop_dry_run_seconds": round(noop_seconds, 2),
        "noop_dry_run_nothing_to_do": "Nothing to be done" in noop.stdout + noop.stderr,
        "matmul_gflops_one_core": round(rate / 1e9, 1),
        "training": arithmetic,
    }
    if total is not None:
        print(f"default study, {args.cores} cores: {total:.1f} s wall time ({total / 60:.1f} min), {workdir}")
    print(
        f"{jobs} jobs, {jobs} Python processes started, {warm} of them ran their work in a child of a warm "
        "interpreter; job time summed per rule (s):"
    )
    for rule, seconds in figures["rule_seconds"].items():
        print(f"  {rule:24s} {seconds:8.1f}   {len(times[rule]):4d} jobs")
    print(f"  {'(sum)':24s} {sum(figures['rule_seconds'].values()):8.1f}")
    t = arithmetic
    print(
        f"training: {t['offline_runs_counted']} offline runs counted of {t['runs']} (reference log-probs from: "
        f"{t['reference_logps']}), {t['steps']} steps, {t['train_seconds']} s of training for "
        f"{t['tflop']} TFLOP = {t['arithmetic_seconds']} s at {figures['matmul_gflops_one_core']} GFLOP/s on one core: "
        f"wall / arithmetic = {t['wall_over_arithmetic']}; padded share of the positions: {t['padding_share']}"
    )
    print(
        f"no-op rerun (snakemake -n): {noop_seconds:.2f} s"
        + ("" if figures["noop_dry_run_nothing_to_do"] else "  (it planned jobs: the run is not complete)")
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
