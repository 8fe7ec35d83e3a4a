"""The paper's result tables, rebuilt from metrics.csv alone, optionally beside the paper's published numbers.

A table is config (``report.tables.<name>``): rows map a row label to a variant name (``base`` = the untouched
base model) and every table shares the columns of ``report.columns`` (label -> benchmark, metric, subset,
scale). A cell is looked up in metrics.csv and multiplied by the column's scale, so that it is in the paper's
units (POPE accuracy 0.88 -> 88.0). Published numbers (workflow/resources/paper_results.csv: table, row,
column, value; row = the variant name our table uses for that paper row) are matched on (table, row, column).

What a missing number means is kept apart, never written as zero:
* ``not run``: the variant is not part of this study (no metrics.csv row at all);
* ``n/a``: the variant ran but this benchmark / metric was not evaluated in this study;
* ``judge failed (k of n)``: the benchmark was evaluated, but its judge gave no usable verdict for any of the n
  items (failed calls and unparsed answers); a number whose judge missed some items carries ``[k of n unjudged]``;
* ``policy training not stable (...)``: an RL run whose training the stability rule rejected (``mmalign.report.
  stability``): its numbers are not shown, as in the paper's Table 8.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from .uncertainty import Interval

NOT_RUN = "not run"
NOT_EVALUATED = "n/a"
JUDGE_FAILED = "judge failed"
UNJUDGED_METRICS = ("judge_failed", "judge_unparsed")
PUBLISHED_COLUMNS = ["table", "row", "column", "value"]


class _Spread(NamedTuple):
    """A metrics.csv row's interval columns."""

    low: float
    high: float
    note: str
    seeds: int
    seed_sd: float


_NO_INTERVAL = _Spread(math.nan, math.nan, "no interval in metrics.csv", 1, math.nan)


class Metrics:
    """Lookups in a metrics.csv frame, in the units of a column spec."""

    def __init__(self, frame: pd.DataFrame, unstable: dict[str, str] | None = None):
        self.frame = frame
        self.unstable = dict(unstable or {})  # variant -> why its RL training is not stable (no number shown)
        self.variants = set(frame["variant"])
        self._values = {
            (r.variant, r.benchmark, str(r.subset), r.metric): float(r.value) for r in frame.itertuples(index=False)
        }
        self._intervals: dict[tuple, _Spread] = {}
        if {"ci_low", "ci_high"} <= set(frame.columns):  # metrics.csv since item intervals (mmalign.report.metrics)
            for r in frame.itertuples(index=False):
                self._intervals[(r.variant, r.benchmark, str(r.subset), r.metric)] = _Spread(
                    float(r.ci_low),
                    float(r.ci_high),
                    r.ci_note if isinstance(r.ci_note, str) else "",
                    int(getattr(r, "seeds", 1) or 1),
                    float(getattr(r, "seed_sd", math.nan)),
                )

    @classmethod
    def read(cls, path: str | Path, unstable: dict[str, str] | None = None) -> Metrics:
        return cls(pd.read_csv(path, dtype={"subset": str}, keep_default_na=False, na_values=[""]), unstable)

    def ran(self, variant: str) -> bool:
        return variant in self.variants

    @staticmethod
    def _key(variant: str, column: dict) -> tuple[str, str, str, str]:
        return (variant, column["benchmark"], str(column.get("subset", "all")), column["metric"])

    def value(self, variant: str, column: dict) -> float:
        """The column's number for a variant in display units, NaN when it is not in metrics.csv (or its RL
        training was not stable)."""
        if variant in self.unstable:
            return math.nan
        return self._values.get(self._key(variant, column), math.nan) * column.get("scale", 1.0)

    def interval(self, variant: str, column: dict) -> Interval:
        """The column's number with its interval, in display units (no interval: NaN bounds and the reason)."""
        key = self._key(variant, column)
        found = self._intervals.get(key, _NO_INTERVAL)
        if variant in self.unstable:  # an RL run the stability rule rejected shows no number, not even a bound
            found, value = _NO_INTERVAL._replace(note=self.unstable[variant]), math.nan
        else:
            value = self._values.get(key, math.nan)
        return Interval(value, found.low, found.high, note=found.note).scaled(column.get("scale", 1.0))

    def seeds(self, variant: str, column: dict) -> int:
        return self._intervals.get(self._key(variant, column), _NO_INTERVAL).seeds

    def seed_sd(self, variant: str, column: dict) -> float:
        """The spread (standard deviation) of a replicated variant's seed runs in display units; NaN otherwise."""
        return self._intervals.get(self._key(variant, column), _NO_INTERVAL).seed_sd * abs(column.get("scale", 1.0))

    def unjudged(self, variant: str, column: dict) -> tuple[int, int]:
        """(items the judge gave no verdict for, items judged or not) of the column's benchmark; (0, 0) for a
        benchmark scored without a judge."""

        def count(metric: str) -> int:
            return int(self._values.get((variant, column["benchmark"], "all", metric), 0))

        missed = sum(count(m) for m in UNJUDGED_METRICS)
        return missed, missed + count("judged")

    def status(self, variant: str, column: dict) -> str | None:
        """None when there is a number; otherwise why not (NOT_RUN, not stable, JUDGE_FAILED or NOT_EVALUATED)."""
        if not self.ran(variant):
            return NOT_RUN
        if variant in self.unstable:
            return self.unstable[variant]
        if not math.isnan(self.value(variant, column)):
            return None
        missed, n = self.unjudged(variant, column)
        return f"{JUDGE_FAILED} ({missed} of {n})" if n and missed == n else NOT_EVALUATED


def read_published(path: str | Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    missing = [c for c in PUBLISHED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: published numbers need columns {PUBLISHED_COLUMNS}, missing {missing}")
    duplicated = frame[frame.duplicated(["table", "row", "column"], keep=False)]
    if not duplicated.empty:
        raise ValueError(
            f"{path}: duplicate published numbers for {duplicated[['table', 'row', 'column']].values.tolist()}"
        )
    return frame


def published_numbers(published: pd.DataFrame | None, table: str) -> dict[tuple[str, str], float]:
    if published is None:
        return {}
    rows = published[published["table"] == table]
    return {(r.row, r.column): float(r.value) for r in rows.itertuples(index=False)}


def build_table(
    metrics: Metrics, table_name: str, table: dict, columns: dict[str, dict], published: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per table row (index = row label): ``variant``, ``status`` and, per column label, our number and
    its interval (``<label> (low)``, ``<label> (high)``); with published numbers also
    ``<label> (paper)`` and ``<label> (diff)`` = ours - paper. Missing = NaN."""
    paper = published_numbers(published, table_name)
    records = []
    for label, variant in table["rows"].items():
        status = NOT_RUN if not metrics.ran(variant) else metrics.unstable.get(variant, "run")
        record = {"row": label, "variant": variant, "status": status}
        for column_label, column in columns.items():
            ours = metrics.interval(variant, column)
            record[column_label] = ours.value
            record[f"{column_label} (low)"] = ours.low
            record[f"{column_label} (high)"] = ours.high
            if published is not None:
                theirs = paper.get((variant, column_label), math.nan)
                record[f"{column_label} (paper)"] = theirs
                record[f"{column_label} (diff)"] = ours.value - theirs
        records.append(record)
    return pd.DataFrame.from_records(records).set_index("row")


def _fmt(value: float, signed: bool = False) -> str:
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _with_interval(number: Interval) -> str:
    """``value ± half-width`` of the interval; the value alone with a dagger when it has none."""
    if number.measured:
        return f"{_fmt(number.value)} ± {number.half_width:.2f}"
    return f"{_fmt(number.value)}†"


def markdown_table(
    metrics: Metrics, frame: pd.DataFrame, columns: dict[str, dict], title: str, with_paper: bool
) -> str:
    """The paper's layout: one line per row, one cell per column. With the paper's numbers a cell reads
    ``ours (paper; diff)``; a missing number of ours reads ``not run`` or ``n/a``, never 0."""
    header = ["", *columns]
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, row in frame.iterrows():
        cells = [label]
        for column_label, column in columns.items():
            missing = metrics.status(row["variant"], column)
            cell = missing if missing else _with_interval(metrics.interval(row["variant"], column))
            if not missing and metrics.seeds(row["variant"], column) > 1:
                cell += f" ({metrics.seeds(row['variant'], column)} seeds)"
            missed, n = metrics.unjudged(row["variant"], column)
            if not missing and missed:
                cell += f" [{missed} of {n} unjudged]"
            if with_paper:
                theirs = row[f"{column_label} (paper)"]
                if math.isnan(theirs):
                    cell += " (paper –)"
                elif missing:
                    cell += f" (paper {_fmt(theirs)})"
                else:
                    cell += f" (paper {_fmt(theirs)}; {_fmt(row[f'{column_label} (diff)'], signed=True)})"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    not_run = [v for v in frame["variant"] if not metrics.ran(v)]
    lines.append("")
    lines.append(f"Rows run: {len(frame) - len(not_run)} of {len(frame)}.")
    if not_run:
        lines.append(f"Not run in this study (shown as `{NOT_RUN}`): {', '.join(dict.fromkeys(not_run))}.")
    unevaluated = [c for c, spec in columns.items() if all(metrics.status(v, spec) for v in frame["variant"])]
    if unevaluated:
        lines.append(f"Columns with no number in this study (`{NOT_EVALUATED}`): {', '.join(unevaluated)}.")
    lines.append(
        "Ours read `value ± half-width` of the item-bootstrap interval (over items, and over seeds where a row has "
        "several; the CSV has both bounds); `†` = no interval (too few items, see metrics.csv `ci_note`)."
    )
    if with_paper:
        lines.append(
            "Cells read `ours (paper; ours - paper)`; the paper's numbers (single runs, no interval): "
            "workflow/resources/paper_results.csv."
        )
    return "\n".join(lines) + "\n"


def write_table(
    metrics_csv,
    table_name: str,
    table: dict,
    columns: dict[str, dict],
    out_csv,
    out_md,
    published_csv=None,
    unstable: dict[str, str] | None = None,
) -> pd.DataFrame:
    metrics = Metrics.read(metrics_csv, unstable)
    published = read_published(published_csv) if published_csv else None
    frame = build_table(metrics, table_name, table, columns, published)
    frame.to_csv(out_csv)
    title = table.get("title", table_name)
    Path(out_md).write_text(markdown_table(metrics, frame, columns, title, published is not None))
    return frame
