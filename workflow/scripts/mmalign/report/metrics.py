"""Aggregation into the one tidy table every table, figure and claim is made from: results/tables/metrics.csv.

Each row carries its item-bootstrap interval (``ci_low``, ``ci_high`` in the metric's own units, over ``ci_items``
items; ``ci_note`` says why an interval is missing). A variant run with replicate seeds (``replicates`` in config)
has one row per seed run (``<variant>/seed<k>``) and a row for the variant itself: the mean over its seeds,
``seeds`` = how many, ``seed_sd`` = their spread, and an interval that combines seeds and items
(``mmalign.report.uncertainty``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from .item_scores import ItemScores, is_count, load_item_scores
from .uncertainty import Interval, Settings, interval, seed_spread

log = logging.getLogger(__name__)

METRIC_COLUMNS = ["variant", "benchmark", "kind", "subset", "metric", "value"]
INTERVAL_COLUMNS = ["ci_low", "ci_high", "ci_items", "ci_note", "seeds", "seed_sd"]
COUNT_NOTE = "a count (no interval)"
NO_TERMS_NOTE = "not a function of item scores (no interval)"


class Evaluations:
    """The evaluated (variant, benchmark) directories under results/eval, their metrics.json and item scores."""

    def __init__(self, metric_files: Iterable[str | Path], items_of: dict[str, str | Path] | None = None):
        self.results = {}
        self.dirs = {}
        for path in metric_files:
            result = json.loads(Path(path).read_text())
            key = (result["variant"], result["benchmark"])
            self.results[key] = result
            self.dirs[key] = Path(path).parent
        self.items_of = items_of or {}
        self._scores: dict[tuple[str, str], ItemScores | None] = {}

    def scores(self, variant: str, benchmark: str) -> ItemScores | None:
        key = (variant, benchmark)
        if key not in self._scores:
            self._scores[key] = load_item_scores(self.dirs[key], self.items_of.get(benchmark))
        return self._scores[key]

    def has(self, variant: str, benchmark: str) -> bool:
        return (variant, benchmark) in self.results


def _interval_cells(found: Interval | None, metric: str, seeds: int = 1, spread: float = math.nan) -> dict:
    if is_count(metric):
        note = COUNT_NOTE
    elif found is None:
        note = NO_TERMS_NOTE
    else:
        note = found.note
    low, high, items = (found.low, found.high, found.items) if found is not None else (math.nan, math.nan, 0)
    return {"ci_low": low, "ci_high": high, "ci_items": items, "ci_note": note, "seeds": seeds, "seed_sd": spread}


def _run_rows(evals: Evaluations, variant: str, benchmark: str, settings: Settings) -> list[dict]:
    result = evals.results[(variant, benchmark)]
    scores = evals.scores(variant, benchmark)
    rows = []
    for row in result["metrics"]:
        key = (str(row["subset"]), row["metric"])
        found = None
        if scores is not None and key in scores.metrics and not is_count(row["metric"]):
            found = interval([scores], key, settings, variant + "|" + benchmark)
        base = {"variant": variant, "benchmark": benchmark, "kind": result["kind"], **row}
        rows.append({**base, **_interval_cells(found, row["metric"])})
    return rows


def _group_rows(evals: Evaluations, group: str, runs: list[str], benchmark: str, settings: Settings) -> list[dict]:
    """The mean over a variant's replicate seeds, with the interval over seeds and items."""
    results = [evals.results[(run, benchmark)] for run in runs]
    side = [evals.scores(run, benchmark) for run in runs]
    values: dict[tuple[str, str], list[float]] = {}
    for result in results:
        for row in result["metrics"]:
            values.setdefault((str(row["subset"]), row["metric"]), []).append(float(row["value"]))
    rows = []
    for (subset, metric), per_seed in values.items():
        key = (subset, metric)
        found, spread = None, math.nan
        complete = len(per_seed) == len(runs) and all(s is not None and key in s.metrics for s in side)
        if complete and not is_count(metric):
            found = interval(side, key, settings, group + "|" + benchmark)
            spread = seed_spread(side, key)
        value = float(np.mean(per_seed)) if len(per_seed) == len(runs) else math.nan
        base = {"variant": group, "benchmark": benchmark, "kind": results[0]["kind"], "subset": subset}
        rows.append({**base, "metric": metric, "value": value, **_interval_cells(found, metric, len(runs), spread)})
    return rows


def _work_units(evals: Evaluations, groups: dict[str, list[str]]) -> list[tuple[str, str, list[str]]]:
    """(benchmark, group, runs): the evaluations whose rows one worker makes. A replicated variant's seed runs go
    with the variant's own rows, so each run's item scores are read once; ``group`` is "" for a variant alone."""
    grouped = {run for runs in groups.values() for run in runs}
    units = []
    for benchmark in sorted({b for _, b in evals.results}):
        for group, runs in sorted(groups.items()):
            present = [run for run in runs if evals.has(run, benchmark)]
            if present:
                units.append((benchmark, group if len(present) == len(runs) else "", present))
        units += [(benchmark, "", [v]) for v, b in sorted(evals.results) if b == benchmark and v not in grouped]
    return units


def _unit_rows(evals: Evaluations, unit: tuple[str, str, list[str]], settings: Settings) -> list[dict]:
    benchmark, group, runs = unit
    rows = [row for run in runs for row in _run_rows(evals, run, benchmark, settings)]
    if group:
        rows += _group_rows(evals, group, runs, benchmark, settings)
    return rows


_WORKER_EVALS: Evaluations | None = None  # a worker process's evaluations (set by _start_worker)


def _start_worker(evals: Evaluations) -> None:
    """A worker gets the parsed metrics.json files (inherited with fork, pickled with spawn) and reads each unit's
    item scores as it meets them. Its matrix products run on one thread: Snakemake gives the job's threads to BLAS
    too, and two workers with two BLAS threads each on two cores took longer than one process alone (74 s against
    69; 35 s this way)."""
    global _WORKER_EVALS
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    _WORKER_EVALS = evals


def _worker_rows(unit: tuple[str, str, list[str]], settings: Settings) -> list[dict]:
    return _unit_rows(_WORKER_EVALS, unit, settings)


def aggregate(
    metric_files: list[str | Path],
    out_csv: str | Path,
    settings: Settings | None = None,
    groups: dict[str, list[str]] | None = None,
    items_of: dict[str, str | Path] | None = None,
    workers: int = 1,
) -> pd.DataFrame:
    """results/tables/metrics.csv: one row per variant x benchmark x subset x metric, with its interval; and per
    replicated variant (``groups``: variant -> its seed runs) the rows over its seeds. ``workers`` processes share
    the evaluations; every draw is seeded by what it resamples (mmalign.report.uncertainty), so the table is the
    same for any number of them."""
    settings = settings or Settings()
    evals = Evaluations(metric_files, items_of)
    units = _work_units(evals, groups or {})
    rows = []
    with tqdm(total=len(evals.results), desc="intervals", unit="evaluation", mininterval=5) as progress:
        if workers > 1 and len(units) > 1:
            with ProcessPoolExecutor(min(workers, len(units)), initializer=_start_worker, initargs=(evals,)) as pool:
                done = pool.map(_worker_rows, units, [settings] * len(units), chunksize=4)
                for unit, unit_rows in zip(units, done):
                    rows += unit_rows
                    progress.update(len(unit[2]))
        else:
            for unit in units:
                rows += _unit_rows(evals, unit, settings)
                progress.update(len(unit[2]))
    frame = pd.DataFrame(rows, columns=METRIC_COLUMNS + INTERVAL_COLUMNS)
    frame = frame.sort_values(["benchmark", "variant", "subset", "metric"])
    missing = frame[frame["ci_note"].str.contains("min_items|undefined", regex=True)]
    if len(missing):
        log.warning("%d metrics have no interval (too few items or undefined resamples)", len(missing))
    Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out_csv, index=False)
    return frame
