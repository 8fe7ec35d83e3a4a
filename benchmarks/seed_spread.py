"""How large the training noise is against the effects the claims test, from a finished study with replicates.

    .venv/bin/python benchmarks/seed_spread.py --from DIR [--json OUT.json] [--runs POPE] [--reading VARIANT ...]

Reads DIR/results/tables/metrics.csv (the ``seed_sd`` of each replicated variant) and
DIR/results/tables/claims_comparisons.csv (every paired difference the scorecard used) and prints:

- per replicated variant and report column: the spread across seeds (standard deviation, the paper's units);
- per claim comparison: |difference|, the spread of the difference across seeds, and their ratio; a comparison
  whose seed spread is larger than its effect cannot be decided by one run, whatever the items say. Two sides with
  the same number of seed runs are paired (the spread of left run k - right run k: with ``replicates.base_model``
  run k of both starts from base model k); otherwise their spreads are added in quadrature. Of the comparisons
  whose spread exceeds their effect, it counts those whose effect is smaller than the base model's own seed
  spread in that column: a rebuild of the base model moves that column more than the method does, so no
  training recipe can make the effect stand out, only more seeds.

With ``--runs COLUMN`` it also prints each seed run's value in that report column (variant x run k; with
``replicates.base_model`` run k starts from base model k, so a weak base-model build shows as one low column) and
counts the variants whose lowest value is run k.

This is the measurement a recipe change (docs/uncertainty.md) is judged by: the same script before and after.
It also says how many seeds each comparison would need if its effect is what the seeds measured: the fewest
per side with which the seed-only standard error of the mean difference puts zero outside the 95% interval (a
lower bound: item noise only adds to it).

A measured effect near zero can never stand out of any spread, so the spread is also held against the effect the
paper reports for the same comparison (its published single numbers, ``--published``, read with each claim's own
table as the scorecard reads them, ``--claims``): a comparison whose seed spread is below the paper's effect can
show an effect of the size the paper claims, whatever this study's own effect turns out to be. The paper's
numbers come from another model and other benchmarks in the same units, so this is a yardstick of size, not a
prediction of our effects.

With ``--reading V1 V2 ...`` only the comparisons with one of those variants on either side are counted: a recipe
screened on a few variants on top of a finished study (docs/uncertainty.md) can change those and no others.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pandas as pd
import yaml

from mmalign.report.claims import paper_differences
from mmalign.report.tables import read_published

REPO = Path(__file__).resolve().parents[1]
RESOURCES = REPO / "workflow" / "resources"


def replicated_columns(metrics: pd.DataFrame, columns: dict[str, dict], field: str) -> pd.DataFrame:
    """variant x report column: `field` of each replicated variant's group row, in display units."""
    groups = metrics[metrics.seeds > 1]
    table = {}
    for label, spec in columns.items():
        rows = groups[
            (groups.benchmark == spec["benchmark"])
            & (groups.metric == spec["metric"])
            & (groups.subset.astype(str) == str(spec.get("subset", "all")))
        ]
        scale = spec.get("scale", 1.0)
        table[label] = rows.set_index("variant")[field] * (abs(scale) if field == "seed_sd" else scale)
    return pd.DataFrame(table)


def variant_spreads(metrics: pd.DataFrame, columns: dict[str, dict]) -> pd.DataFrame:
    """variant x column: seed_sd in display units, for the variants with several seeds."""
    return replicated_columns(metrics, columns, "seed_sd")


def run_values(metrics: pd.DataFrame, variant: str, spec: dict) -> list[float]:
    """The value of each seed run of a replicated variant (``<variant>/seed<k>``, k ascending) in display units."""
    rows = metrics[
        metrics.variant.str.startswith(f"{variant}/seed")
        & (metrics.benchmark == spec["benchmark"])
        & (metrics.metric == spec["metric"])
        & (metrics.subset.astype(str) == str(spec.get("subset", "all")))
    ]
    rows = rows.assign(k=rows.variant.str.rsplit("seed", n=1).str[1].astype(int)).sort_values("k")
    return (rows.value * spec.get("scale", 1.0)).tolist()


def seed_runs(metrics: pd.DataFrame, variants, spec: dict) -> pd.DataFrame:
    """variant x seed k: the value of each seed run of each variant in display units. With replicates.base_model
    column k is base model k, so a base model whose runs all read low shows as one low column."""
    return pd.DataFrame({variant: pd.Series(run_values(metrics, variant, spec)) for variant in variants}).T


def lowest_run_counts(runs: pd.DataFrame) -> dict[int, int]:
    """How many variants have their lowest value in run k (variants with all runs measured)."""
    lowest = runs.dropna().idxmin(axis=1).value_counts()
    return {int(k): int(n) for k, n in lowest.sort_index().items()}


def paired_spreads(metrics: pd.DataFrame, comparisons: pd.DataFrame, columns: dict[str, dict]) -> list[float]:
    """Per comparison, the spread across seeds of the per-seed difference (left run k - right run k) when both
    sides have the same number of seed runs; NaN otherwise. With replicates.base_model, run k of both sides starts
    from base model k, so the sides are correlated and the spread of the difference is not their spreads added."""
    spreads = []
    for row in comparisons.itertuples():
        spec = columns.get(row.column)
        left, right = (
            run_values(metrics, v, spec) if spec and isinstance(v, str) else [] for v in (row.left, row.right)
        )
        paired = len(left) == len(right) >= 2
        spreads.append(float(pd.Series(left).sub(pd.Series(right)).std(ddof=1)) if paired else math.nan)
    return spreads


def comparison_noise(comparisons: pd.DataFrame, paired: list[float] | None = None) -> pd.DataFrame:
    """The seed spread of each comparison's difference: ``paired`` (the spread of per-seed differences) where
    given, else the two sides' spreads added in quadrature (independent seeds)."""
    frame = comparisons.copy()
    left = frame.left_seed_sd.fillna(0.0)
    right = frame.right_seed_sd.fillna(0.0)
    frame["seed_spread"] = (left**2 + right**2) ** 0.5
    frame.loc[frame.left_seed_sd.isna() & frame.right_seed_sd.isna(), "seed_spread"] = math.nan
    if paired is not None:
        paired = pd.Series(paired, index=frame.index)
        frame["paired"] = paired.notna()
        frame["seed_spread"] = paired.fillna(frame.seed_spread)
    frame["effect"] = frame["diff"].abs()
    frame["spread_over_effect"] = frame.seed_spread / frame.effect
    frame["seeds_to_resolve"] = [seeds_to_resolve(s, e) for s, e in zip(frame.seed_spread, frame.effect)]
    return frame


def within_base_noise(noise: pd.DataFrame, spreads: pd.DataFrame, base: str = "base") -> pd.Series:
    """Per comparison: is its effect smaller than the base model's own seed spread in that column? Such an
    effect is smaller than what rebuilding the base model moves; no training recipe can make it stand out of
    that noise, only more seeds can. False where the base model has no seed spread (one build)."""
    if base not in spreads.index:
        return pd.Series(False, index=noise.index)
    base_sd = noise.column.map(spreads.loc[base])
    return (noise.effect < base_sd).fillna(False).astype(bool)


def against_paper(noise: pd.DataFrame, paper: list[float]) -> pd.DataFrame:
    """The comparisons with a seed spread and a paper effect, with ``paper_effect`` = |paper's difference|, the
    seeds each would need to resolve an effect of the paper's size (``seeds_for_paper_effect``), and whether the
    seed spread is above the paper's effect (``spread_above_paper``) and above ours (``spread_above_ours``)."""
    frame = noise.assign(paper_diff=paper, paper_effect=[abs(d) for d in paper])
    frame = frame.dropna(subset=["seed_spread", "paper_effect"])
    seeds = [seeds_to_resolve(s, e) for s, e in zip(frame.seed_spread, frame.paper_effect)]
    return frame.assign(
        seeds_for_paper_effect=seeds,
        spread_above_paper=frame.seed_spread > frame.paper_effect,
        spread_above_ours=frame.seed_spread > frame.effect,
    )


def per_column_against_paper(frame: pd.DataFrame) -> pd.DataFrame:
    """Per report column: comparisons, how many have a seed spread above the paper's effect (and above ours), and
    the medians of the paper's effect, the seed spread and our effect."""
    return frame.groupby("column").agg(
        comparisons=("effect", "size"),
        spread_above_paper_effect=("spread_above_paper", "sum"),
        spread_above_our_effect=("spread_above_ours", "sum"),
        median_paper_effect=("paper_effect", "median"),
        median_seed_spread=("seed_spread", "median"),
        median_our_effect=("effect", "median"),
    )


SEED_BUDGETS = (3, 5, 10, 20)


def seeds_to_resolve(seed_spread: float, effect: float, z: float = 1.96) -> float:
    """Fewest seeds per side n with effect > z * seed_spread / sqrt(n); inf for no effect, nan without a spread."""
    if math.isnan(seed_spread):
        return math.nan
    if effect == 0:
        return math.inf
    return float(math.floor((z * seed_spread / effect) ** 2) + 1)


def excludes_zero(comparisons: pd.DataFrame) -> pd.Series:
    """Per comparison: does its paired interval exclude zero (either way)? False without an interval."""
    return (comparisons.low > 0) | (comparisons.high < 0)


def reading(comparisons: pd.DataFrame, variants: list[str]) -> pd.DataFrame:
    """The comparisons with one of `variants` on either side: what a recipe screened on a few variants, on top of a
    finished study, can change. A variant no comparison reads is a ValueError (a typo would otherwise count nothing)."""
    unknown = sorted(set(variants) - set(comparisons.left) - set(comparisons.right))
    if unknown:
        raise ValueError(f"no claim comparison reads {', '.join(unknown)}")
    return comparisons[comparisons.left.isin(variants) | comparisons.right.isin(variants)].reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="done", required=True, help="a finished study's directory")
    parser.add_argument("--configfile", default=str(REPO / "config" / "config.yaml"))
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--runs", metavar="COLUMN", help="also print each seed run's value in this report column")
    parser.add_argument(
        "--reading", nargs="+", metavar="VARIANT", help="only the claim comparisons that read one of these variants"
    )
    parser.add_argument("--claims", default=str(RESOURCES / "claims.yaml"), help="the claims (default: %(default)s)")
    parser.add_argument(
        "--published", default=str(RESOURCES / "paper_results.csv"), help="the paper's numbers (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    tables = Path(args.done) / "results" / "tables"
    columns = yaml.safe_load(Path(args.configfile).read_text())["report"]["columns"]
    if args.runs is not None and args.runs not in columns:
        parser.error(f"--runs {args.runs}: not a column of report.columns in {args.configfile} ({', '.join(columns)})")
    metrics = pd.read_csv(tables / "metrics.csv", dtype={"subset": str})
    if "seeds" not in metrics.columns or not (metrics.seeds > 1).any():
        print(f"{tables / 'metrics.csv'}: no replicated variant (config key 'replicates')", file=sys.stderr)
        return 1
    spreads = variant_spreads(metrics, columns)
    comparisons = pd.read_csv(tables / "claims_comparisons.csv")
    if args.reading:
        try:
            comparisons = reading(comparisons, args.reading)
        except ValueError as error:
            parser.error(f"--reading: {error}")
    noise = comparison_noise(comparisons, paired_spreads(metrics, comparisons, columns))
    pd.set_option("display.width", 200)
    print("Seed spread (standard deviation across seeds, the paper's units):")
    print(spreads.round(2).to_string())
    print("\nClaim comparisons: effect |left - right| against the seed spread of the difference:")
    names = ["id", "column", "left", "right", "diff", "low", "high", "seed_spread", "spread_over_effect"]
    shown = noise[[*names, "seeds_to_resolve"]]
    print(shown.round(2).to_string(index=False))
    measured = noise.dropna(subset=["seed_spread"])
    noisy = measured[measured.seed_spread > measured.effect]
    within_base = within_base_noise(noisy, spreads)
    summary = {
        "replicated_variants": len(spreads),
        "reading": sorted(args.reading) if args.reading else None,
        "median_seed_sd": {c: float(spreads[c].median()) for c in spreads.columns if spreads[c].notna().any()},
        "comparisons": len(noise),
        "comparisons_with_seed_spread": len(measured),
        "comparisons_paired_by_seed": int(noise.paired.sum()),
        "intervals_excluding_zero": int(excludes_zero(comparisons).sum()),
        "seed_spread_larger_than_effect": len(noisy),
        # of those, effects smaller than the base model's own seed spread in their column (a recipe cannot help)
        "of_which_effect_within_base_model_spread": int(within_base.sum()),
        "median_spread_over_effect": float(measured.spread_over_effect.median()) if len(measured) else None,
        # comparisons whose measured effect the seeds alone would resolve with this many seeds per side
        "resolvable_with_seeds": {n: int((measured.seeds_to_resolve <= n).sum()) for n in SEED_BUDGETS},
    }
    claims = yaml.safe_load(Path(args.claims).read_text())
    paper = against_paper(noise, paper_differences(noise, claims, read_published(args.published)))
    print("\nThe seed spread against the effect the paper reports for the same comparison (its single numbers):")
    print(per_column_against_paper(paper).round(2).to_string())
    summary["against_paper"] = {
        "comparisons_with_paper_effect": len(paper),
        "seed_spread_larger_than_paper_effect": int(paper.spread_above_paper.sum()),
        "seed_spread_larger_than_both_effects": int((paper.spread_above_paper & paper.spread_above_ours).sum()),
        "median_paper_effect": {c: round(float(g.paper_effect.median()), 4) for c, g in paper.groupby("column")},
        # comparisons whose seed spread would let this many seeds per side resolve an effect of the paper's size
        "paper_effect_resolvable_with_seeds": {n: int((paper.seeds_for_paper_effect <= n).sum()) for n in SEED_BUDGETS},
    }
    if args.runs is not None:
        runs = seed_runs(metrics, spreads.index, columns[args.runs])
        print(f"\n{args.runs} of each seed run (column k: run k, from base model k with replicates.base_model):")
        print(runs.round(2).to_string())
        # a base model that pulls every variant down shows as the run most variants have lowest
        summary["lowest_run"] = {"column": args.runs, "variants_per_run": lowest_run_counts(runs)}
    print(f"\n{json.dumps(summary, indent=2)}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
