"""What a single-run study would have concluded: the scorecard of a finished replicated study recomputed on run 0
of every replicated variant (and base model 0) alone, judged on the item-level paired intervals only.

    .venv/bin/python benchmarks/single_run_claims.py STUDY_DIR OUT_DIR [--points] [--configfile config/config.yaml]
    .venv/bin/python benchmarks/compare_claims.py OUT_DIR STUDY_DIR

With ``--points`` each claim is judged on run 0's single numbers, as the scorecard did before it had intervals
(holds / does not hold by the sign of the difference, never inconclusive): the single-run scorecard as a study
without replicates or intervals reads it.

Run 0 of a replicated variant computes exactly what the variant trained alone computes (seed + 0, base model 0;
docs/uncertainty.md), so OUT_DIR/results/tables/claims.csv is the single-run scorecard of the same commit, without
a second study. ``compare_claims.py`` then counts which single-run verdicts stay, flip, or become inconclusive when
the seeds are taken into account.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd
import yaml

from mmalign.config import REPLICATE
from mmalign.report.claims import write_scorecard
from mmalign.report.metrics import Evaluations
from mmalign.report.uncertainty import Settings

REPO = Path(__file__).resolve().parents[1]
RESOURCES = REPO / "workflow" / "resources"
SEED_RUN = re.compile(r"^(?P<group>.+)/seed(?P<k>\d+)$")  # REPLICATE's names, read back


def run_zero_metrics(metrics: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """metrics.csv with each replicated group's rows replaced by its run 0's (renamed to the group, one seed), and
    the groups as single-run groups ``{group: [group/seed0]}`` for the item-level intervals."""
    runs = metrics.variant.str.extract(SEED_RUN)
    run_zero = {group: REPLICATE.format(variant=group, k=0) for group in sorted(set(runs.group.dropna()))}
    missing = [group for group, run in run_zero.items() if not (metrics.variant == run).any()]
    if missing:
        raise SystemExit(f"metrics.csv has no run 0 (<variant>/seed0) of: {', '.join(missing)}")
    zero = metrics[runs.k == "0"].assign(variant=runs.group[runs.k == "0"], seeds=1, seed_sd=float("nan"))
    kept = metrics[runs.group.isna() & ~metrics.variant.isin(run_zero)]
    return pd.concat([kept, zero], ignore_index=True), {group: [run] for group, run in run_zero.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="a finished study's directory (results/tables/metrics.csv)")
    parser.add_argument("out", type=Path, help="where results/tables/claims*.csv of run 0 alone go")
    parser.add_argument("--points", action="store_true", help="judge on single numbers, without intervals")
    parser.add_argument("--configfile", type=Path, default=REPO / "config" / "config.yaml")
    args = parser.parse_args(argv)
    config = yaml.safe_load(args.configfile.read_text())
    results = args.study / "results"

    metrics, groups = run_zero_metrics(pd.read_csv(results / "tables" / "metrics.csv", dtype={"subset": str}))
    tables = args.out / "results" / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    metrics.to_csv(tables / "metrics.csv", index=False)

    items = {p.parent.name: p for p in (results / "benchmarks").glob("*/items.jsonl")}
    card = write_scorecard(
        tables / "metrics.csv",
        RESOURCES / "claims.yaml",
        config["report"].get("columns", {}),
        f"{config['study']} (run 0 of each replicated variant alone{', single numbers' if args.points else ''})",
        tables / "claims.csv",
        tables / "claims.md",
        RESOURCES / "paper_results.csv",
        evals=None if args.points else Evaluations(sorted(results.glob("eval/**/metrics.json")), items),
        groups=groups,
        settings=Settings.from_config(config["report"].get("uncertainty")),
        out_comparisons=tables / "claims_comparisons.csv",
        reward_accuracy_paths=() if args.points else sorted(results.glob("reward_models/*/heldout/*.json")),
        stability_paths=sorted(results.glob("runs/**/train_metrics.json")),
    )
    print(f"run 0 alone, {len(groups)} replicated variants: {card['verdict'].value_counts().to_dict()}")
    print(f"wrote {tables / 'claims.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
