"""Two runs' metrics.csv compared: per benchmark, how many numbers are identical, and the largest differences.

    .venv/bin/python benchmarks/compare_metrics.py BEFORE/results/tables/metrics.csv AFTER/results/tables/metrics.csv

Bookkeeping counts that depend on the order jobs ran in (``judge_cached``: answers found in the shared judgment
cache) are left out. Prints a markdown table; ``--top N`` lists the N largest differences too.
"""

from __future__ import annotations

import argparse

import pandas as pd

KEYS = ["variant", "benchmark", "kind", "subset", "metric"]
ORDER_DEPENDENT = {"judge_cached"}


def compare(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant, benchmark, subset, metric) in either run, with both values and the difference."""
    joined = before.merge(after, on=KEYS, how="outer", suffixes=("_before", "_after"), indicator=True)
    joined = joined[~joined.metric.isin(ORDER_DEPENDENT)]
    joined["diff"] = (joined.value_after - joined.value_before).abs()
    return joined


def summary(joined: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for benchmark, group in joined.groupby("benchmark"):
        both = group[group._merge == "both"]
        worst = both.sort_values("diff", ascending=False).iloc[0] if len(both) else None
        rows.append(
            {
                "benchmark": benchmark,
                "numbers": len(group),
                "only in one run": int((group._merge != "both").sum()),
                "identical": int((both["diff"] == 0).sum()),
                "largest difference": float(worst["diff"]) if worst is not None else float("nan"),
                "where": f"{worst.variant} {worst.subset} {worst.metric}" if worst is not None else "",
                "before": float(worst.value_before) if worst is not None else float("nan"),
                "after": float(worst.value_after) if worst is not None else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--top", type=int, default=0)
    args = parser.parse_args()
    joined = compare(pd.read_csv(args.before), pd.read_csv(args.after))
    print(summary(joined).to_markdown(index=False, floatfmt=".4g"))
    both = joined[joined._merge == "both"]
    print(f"\n{int((both['diff'] == 0).sum())} of {len(joined)} numbers identical")
    if args.top:
        top = both.sort_values("diff", ascending=False).head(args.top)
        print(top[[*KEYS, "value_before", "value_after", "diff"]].to_markdown(index=False, floatfmt=".4g"))


if __name__ == "__main__":
    main()
