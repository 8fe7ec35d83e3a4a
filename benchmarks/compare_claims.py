"""Two finished studies' scorecards compared: which claim verdicts stay, flip or change, and how wide the paired
intervals of the claim comparisons are in each.

    .venv/bin/python benchmarks/compare_claims.py BEFORE_DIR AFTER_DIR [--json OUT.json]

Reads ``results/tables/claims.csv`` (one verdict per claim) and ``results/tables/claims_comparisons.csv`` (every
paired difference the scorecard used, with its interval) of both. This is how a change to the study's design (more
seeds, base-model seeds, larger benchmarks, another recipe) is judged by its effect on the claims: a change that
narrows the intervals should turn inconclusive verdicts into decided ones, not flip decided ones.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

COMPARISON_KEYS = ["id", "column", "left", "right"]
WIDTH_COLUMNS = ["column", "comparisons", "median_width_before", "exclude_zero_before", "median_width_after",
                 "exclude_zero_after"]  # fmt: skip


def verdict_changes(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """One row per claim in both scorecards: its verdict before and after, and whether it changed."""
    joined = before[["id", "verdict"]].merge(after[["id", "verdict"]], on="id", suffixes=("_before", "_after"))
    joined["changed"] = joined.verdict_before != joined.verdict_after
    return joined


def transition_counts(changes: pd.DataFrame) -> dict[str, int]:
    """'<before> -> <after>': how many claims went that way (stays included, as '<v> -> <v>')."""
    counts = changes.groupby(["verdict_before", "verdict_after"]).size()
    return {f"{b} -> {a}": int(n) for (b, a), n in counts.items()}


def interval_widths(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Per report column: how many comparisons both studies measured, the median width of their paired intervals
    before and after, and how many intervals exclude zero in each."""
    both = before.merge(after, on=COMPARISON_KEYS, suffixes=("_before", "_after")).dropna(
        subset=["low_before", "high_before", "low_after", "high_after"]
    )
    rows = []
    for column, group in both.groupby("column"):
        row = {"column": column, "comparisons": len(group)}
        for side in ("before", "after"):
            low, high = group[f"low_{side}"], group[f"high_{side}"]
            row[f"median_width_{side}"] = float((high - low).median())
            row[f"exclude_zero_{side}"] = int(((low > 0) | (high < 0)).sum())
        rows.append(row)
    # a scorecard judged on single numbers has no intervals: then no column is compared, and the frame is empty
    return pd.DataFrame(rows, columns=WIDTH_COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tables = [d / "results" / "tables" for d in (args.before, args.after)]
    changes = verdict_changes(*(pd.read_csv(t / "claims.csv") for t in tables))
    widths = interval_widths(*(pd.read_csv(t / "claims_comparisons.csv") for t in tables))
    transitions = transition_counts(changes)
    print("Claim verdicts, before -> after:")
    for transition, n in transitions.items():
        print(f"  {transition}: {n}")
    changed = changes[changes.changed]
    if len(changed):
        print("\nChanged:\n" + changed.to_string(index=False))
    print("\nPaired intervals of the claim comparisons, per column:")
    print(widths.round(2).to_string(index=False))
    summary = {
        "transitions": transitions,
        "changed_claims": changed.id.astype(int).tolist(),
        "comparisons": int(widths.comparisons.sum()),
        "exclude_zero_before": int(widths.exclude_zero_before.sum()),
        "exclude_zero_after": int(widths.exclude_zero_after.sum()),
        "median_width_by_column": {
            r.column: [round(r.median_width_before, 2), round(r.median_width_after, 2)] for r in widths.itertuples()
        },
    }
    print(f"\n{json.dumps(summary, indent=2)}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
