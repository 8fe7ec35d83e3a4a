"""Wall time of the default study on this machine: runs the whole DAG in a fresh directory and prints
the total and the time of each job (from Snakemake's own job timing in the run's log).

    .venv/bin/python perf/default_study_walltime.py [--cores 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", default="2")
    parser.add_argument("--configfile", default=str(REPO / "config" / "config.yaml"))
    parser.add_argument("--keep", help="run in this directory (kept) instead of a temporary one")
    args = parser.parse_args()
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mmalign-walltime-"))
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        args.configfile,
        "--cores",
        args.cores,
    ]
    start = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True)
    total = time.time() - start
    if out.returncode:
        print(out.stderr[-4000:])
        raise SystemExit(f"the study failed (exit {out.returncode})")
    print(f"default study, {args.cores} cores: {total:.1f} s wall time ({workdir})")
    for tsv in sorted((workdir / "benchmarks").rglob("*.tsv")):
        seconds = float(tsv.read_text().splitlines()[1].split("\t")[0])
        print(f"  {str(tsv.relative_to(workdir / 'benchmarks')):55s} {seconds:7.1f} s")
    for metrics in sorted((workdir / "results" / "base_model").glob("*.json")):
        text = metrics.read_text()
        runtime = re.search(r'"train_runtime": ([\d.]+)', text)
        if runtime:
            print(f"  base model SFT (inside build_base_model)              {float(runtime.group(1)):7.1f} s")


if __name__ == "__main__":
    main()
