"""How sure a number is: seeded percentile bootstrap intervals over items, paired intervals for differences, and
intervals that combine replicate training seeds with items.

* One run: resample its items with replacement (within the benchmark's design strata), recompute the metric from
  its item terms (``mmalign.report.item_scores``), and take the percentile interval at ``level``.
* A difference between two variants on the same items: *paired*, one resample of items shared by both, so that
  item difficulty (which both see) cancels. Items one judge missed for either side are left out, and counted.
* Replicate seeds (``replicates`` in config): a two-level bootstrap. Each resample draws the seeds with
  replacement, and one item resample that every seed shares (the items are the same for all seeds), then averages
  the drawn seeds. Two variants with the same number of seeds are paired on the seed draw too (replicate k of
  each; harmless when the seeds are independent, right when replicate k shares a base model).

A metric over fewer than ``min_items`` items gets no interval: its note says why, never a zero width. Settings:
``report.uncertainty`` (defaults in ``Settings``); every random draw is seeded from ``seed`` and the names of what
is compared, so an interval does not depend on the order in which others are computed.
"""

from __future__ import annotations

import functools
import hashlib
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from .item_scores import ItemScores


@dataclass(frozen=True)
class Settings:
    bootstrap: int = 1000  # resamples (B)
    level: float = 0.95  # the percentile interval's coverage
    seed: int = 0
    min_items: int = 20  # fewer items than this: no interval (the note says so)

    @classmethod
    def from_config(cls, section: dict | None) -> Settings:
        """``report.uncertainty`` over the defaults."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (section or {}).items() if k in known})


@dataclass(frozen=True)
class Interval:
    value: float
    low: float = math.nan
    high: float = math.nan
    items: int = 0  # items resampled (after pairing)
    note: str = ""  # why there is no interval, or what pairing dropped

    @property
    def measured(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def shifted(self, by: float) -> Interval:
        """The interval of value - by (a number against a constant, e.g. an accuracy against chance)."""
        return Interval(self.value - by, self.low - by, self.high - by, self.items, self.note)

    def scaled(self, factor: float) -> Interval:
        low, high = sorted((self.low * factor, self.high * factor)) if self.measured else (math.nan, math.nan)
        return Interval(self.value * factor, low, high, self.items, self.note)


# One side of a comparison: the runs (one per replicate seed) of one variant on one benchmark.
Side = Sequence[ItemScores]


def rng_for(settings: Settings, *names: str) -> np.random.Generator:
    return np.random.default_rng([settings.seed, zlib.crc32("|".join(names).encode())])


def item_counts(side: Side, ids: list[str], settings: Settings, names: tuple[str, ...]) -> np.ndarray:
    """The item resample of a comparison, seeded by what is compared and which items: every metric over the same
    items of the same variants shares it (and it is drawn once)."""
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()
    strata = tuple(side[0].restricted(ids)[1])
    return _cached_counts(settings, names, digest, strata)


@functools.lru_cache(maxsize=16)
def _cached_counts(settings: Settings, names: tuple[str, ...], digest: str, strata: tuple) -> np.ndarray:
    counts = resample_counts(np.array(strata), settings.bootstrap, rng_for(settings, "items", digest, *names))
    counts.flags.writeable = False
    return counts


def resample_counts(strata: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """(draws, n) counts: how often each item is drawn, resampling with replacement within each stratum."""
    n = len(strata)
    offsets = np.arange(draws)[:, None] * n
    drawn = []  # every stratum's picks (in the stratum order that seeds them), counted in one pass
    for stratum in np.unique(strata):
        where = np.flatnonzero(strata == stratum)
        drawn.append((offsets + where[rng.integers(0, len(where), size=(draws, len(where)))]).ravel())
    return np.bincount(np.concatenate(drawn), minlength=draws * n).astype(float).reshape(draws, n)


def shared_members(runs: Sequence[ItemScores], key: tuple[str, str]) -> list[str]:
    """Ids that are members of the metric in every run (first run's order)."""
    if any(key not in run.metrics for run in runs):
        return []
    keep = None
    for run in runs:
        mine = {i for i, m in zip(run.ids, run.metrics[key].members) if m}
        keep = mine if keep is None else keep & mine
    return [i for i in runs[0].ids if i in keep]


def _seed_values(runs: Side, key, ids, counts) -> np.ndarray:
    """(B, seeds): each run's metric under the shared item resample."""
    columns = []
    for run in runs:
        index, _ = run.restricted(ids)
        columns.append(run.metrics[key].value_at(index, counts))
    return np.stack(columns, axis=1)


def _point(runs: Side, key, ids) -> float:
    values = []
    for run in runs:
        index, _ = run.restricted(ids)
        values.append(float(run.metrics[key].value_at(index, np.ones(len(index)))))
    return float(np.mean(values))


def _seed_draws(seeds: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    if seeds == 1:
        return np.zeros((draws, 1), dtype=int)
    return rng.integers(0, seeds, size=(draws, seeds))


def _percentile(stats: np.ndarray, settings: Settings) -> tuple[float, float, str]:
    finite = stats[np.isfinite(stats)]
    if len(finite) < 0.99 * len(stats):
        return math.nan, math.nan, f"{len(stats) - len(finite)} of {len(stats)} resamples undefined"
    tail = (1 - settings.level) / 2
    low, high = np.quantile(finite, [tail, 1 - tail])
    return float(low), float(high), ""


def _too_few(ids: list[str], settings: Settings) -> str:
    if len(ids) < settings.min_items:
        return f"{len(ids)} items < report.uncertainty.min_items {settings.min_items}"
    return ""


def _bootstrap(sides: Sequence[Side], key, ids, settings: Settings, names: tuple[str, ...]) -> np.ndarray:
    """(B, sides): each side's mean over its drawn seeds, under one item resample shared by every side. Sides
    with as many seeds as the first share its seed draw (replicate k with replicate k)."""
    counts = item_counts(sides[0], ids, settings, names)
    rng = rng_for(settings, "seeds", *names, *key)
    first = _seed_draws(len(sides[0]), settings.bootstrap, rng)
    columns = []
    for side in sides:
        picks = first if len(side) == len(sides[0]) else _seed_draws(len(side), settings.bootstrap, rng)
        columns.append(np.take_along_axis(_seed_values(side, key, ids, counts), picks, axis=1).mean(axis=1))
    return np.stack(columns, axis=1)


def interval(side: Side, key: tuple[str, str], settings: Settings, name: str) -> Interval:
    """The metric ``key`` = (subset, metric) of one variant (one run, or the mean of its replicate seeds)."""
    ids = shared_members(side, key)
    point = _point(side, key, ids) if ids else math.nan
    short = _too_few(ids, settings)
    if short:
        return Interval(point, items=len(ids), note=short)
    stats = _bootstrap([side], key, ids, settings, (name,))[:, 0]
    low, high, note = _percentile(stats, settings)
    return Interval(point, low, high, len(ids), note)


def paired_difference(
    left: Side, right: Side, key: tuple[str, str], settings: Settings, names: tuple[str, str]
) -> Interval:
    """left - right on the items both have, with one item resample (and, with equal seed counts, one seed draw)
    shared by both sides."""
    ids = shared_members([*left, *right], key)
    dropped = len(shared_members(left, key)) - len(ids)
    note = f"paired on {len(ids)} items ({dropped} judged for one side only)" if dropped > 0 else ""
    point = _point(left, key, ids) - _point(right, key, ids) if ids else math.nan
    short = _too_few(ids, settings)
    if short:
        return Interval(point, items=len(ids), note=short)
    both = _bootstrap([left, right], key, ids, settings, names)
    low, high, why = _percentile(both[:, 0] - both[:, 1], settings)
    return Interval(point, low, high, len(ids), why or note)


def seed_spread(side: Side, key: tuple[str, str]) -> float:
    """Standard deviation of the metric across replicate seeds (each on its own items); NaN for one seed."""
    if len(side) < 2 or any(key not in run.metrics for run in side):
        return math.nan
    return float(np.std([float(run.metrics[key].value()) for run in side], ddof=1))
