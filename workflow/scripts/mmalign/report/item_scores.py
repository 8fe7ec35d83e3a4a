"""Each benchmark metric as a function of its items, read back from an evaluation's judgments.jsonl, so that it
can be resampled (``mmalign.report.uncertainty``).

Every metric of the benchmarks in ``mmalign.evaluate.benchmarks`` is a mean over *parts* of a ratio of sums over
items: ``value = scale * mean_p( sum_i num_p[i] / sum_i den_p[i] )``. A plain mean (GQA accuracy) is one part with
``den = 1``; LLaVA-W's relative score is one part with ``den`` = the reference's rating; POPE's overall accuracy is
the mean of three parts, one per split; POPE's F1 is ``2 TP / (2 TP + FP + FN)``. ``members`` marks the items a
metric is over (a subset's items): a resample draws from them. ``strata`` are the benchmark's design strata (POPE's
splits, of fixed size by construction): resampling stays within them.

The decomposition lives here, in the report stage, and reads only what evaluation already writes (judgments.jsonl,
and items.jsonl for MM-Vet's capabilities): adding intervals reruns no evaluation. ``check_against`` pins it to
the scoring code: the decomposition's value on the full sample must equal the metric in metrics.json.

Judged benchmarks keep only judged items (a score came back): failed and unparsed judgments are counted in
metrics.csv (``judge_failed``, ``judge_unparsed``) and are never resampled in. A POPE / GQA / TextVQA answer that
does not parse is an item scored wrong by the benchmark's pinned rule, so it is resampled like any other.
Counts (``n``, ``unparsed``, ``judged``, ...) are not estimates and get no interval.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from mmalign.schema import read_jsonl

# metrics.csv rows that count things rather than estimate them: no interval
COUNTS = {
    "n",
    "unparsed",
    "judged",
    "ties",
    "judge_unparsed",
    "judge_failed",
    "judge_cached",
    "empty_answers",
    "no_mentions",
}


def is_count(metric: str) -> bool:
    """Whether a metrics.csv row counts things (items, failures, skips) rather than estimating a score."""
    return metric in COUNTS or metric.startswith("skipped_")


@dataclass
class Decomposition:
    """One metric as ``scale * mean over parts of sum(num)/sum(den)`` over its member items."""

    parts: list[tuple[np.ndarray, np.ndarray]]
    members: np.ndarray  # bool per item: the items this metric is over
    scale: float = 1.0
    empty: float = math.nan  # the metric's value for a part whose denominator sums to 0 (the scoring code's rule)

    def value(self, weights: np.ndarray | None = None) -> np.ndarray | float:
        """The metric under item weights: (n,) or (B, n) resample counts; None = the full sample (all ones)."""
        if weights is None:
            weights = np.ones(len(self.members))
        ratios = []
        for num, den in self.parts:
            top, bottom = weights @ num, weights @ den
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios.append(np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1), self.empty))
        return self.scale * np.mean(ratios, axis=0)

    def value_at(self, index: np.ndarray, weights: np.ndarray) -> np.ndarray | float:
        """``value`` with ``weights`` ((m,) or (B, m)) for the items at positions ``index`` and 0 for every other
        item, without building the (B, n) zero-padded matrix: a subset's resample over a few of POPE's 3,564 items
        would otherwise multiply mostly zeros."""
        restricted = [(num[index], den[index]) for num, den in self.parts]
        return Decomposition(restricted, self.members[index], self.scale, self.empty).value(weights)


@dataclass
class ItemScores:
    """One evaluated (variant, benchmark): its item ids, design strata, and each metric's decomposition."""

    ids: list[str]
    strata: np.ndarray
    metrics: dict[tuple[str, str], Decomposition] = field(default_factory=dict)  # (subset, metric) -> terms

    @cached_property
    def _position(self) -> dict[str, int]:  # built once: every interval of every metric of this evaluation asks
        return {i: k for k, i in enumerate(self.ids)}

    def restricted(self, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Positions of ``ids`` in this evaluation (to align two evaluations of the same items), and their strata."""
        index = np.array([self._position[i] for i in ids], dtype=int)
        return index, self.strata[index]


def _array(values) -> np.ndarray:
    return np.asarray(list(values), dtype=float)


def _subset_parts(subsets: list[str], num, den) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per subset: (num, den) masked to its items."""
    labels = np.array(subsets)
    return {s: (num * (labels == s), den * (labels == s)) for s in sorted(set(subsets))}


def _grouped(subsets, metric, num, den, scale=1.0, empty=math.nan, over_subsets=False):
    """A metric per subset and over 'all'. ``over_subsets``: 'all' is the mean of the subsets' values (POPE's
    splits); otherwise 'all' pools every item (one part)."""
    labels = np.array(subsets)
    everyone = np.ones(len(labels), dtype=bool)
    out = {}
    parts = _subset_parts(subsets, num, den)
    for subset, part in parts.items():
        out[(subset, metric)] = Decomposition([part], labels == subset, scale, empty)
    if over_subsets:
        out[("all", metric)] = Decomposition(list(parts.values()), everyone, scale, empty)
    else:
        out[("all", metric)] = Decomposition([(num, den)], everyone, scale, empty)
    return out


def pope(judgments: list[dict], items: dict) -> ItemScores:
    splits = [j["subset"] for j in judgments]
    truth_yes = _array(j["truth"] == "yes" for j in judgments)
    said_yes = _array(j["parsed"] == "yes" for j in judgments)
    correct = _array(j["correct"] for j in judgments)
    ones = np.ones(len(judgments))
    tp = truth_yes * said_yes
    fp = (1 - truth_yes) * said_yes
    fn = truth_yes * (1 - said_yes)
    metrics = {}
    for metric, num, den, empty in (
        ("accuracy", correct, ones, math.nan),
        ("precision", tp, said_yes, 0.0),
        ("recall", tp, truth_yes, 0.0),
        ("f1", 2 * tp, 2 * tp + fp + fn, 0.0),
        ("yes_ratio", said_yes, ones, math.nan),
    ):
        metrics.update(_grouped(splits, metric, num, den, empty=empty, over_subsets=True))
    return ItemScores([j["id"] for j in judgments], np.array(splits), metrics)


def _single(judgments: list[dict], metrics: dict[str, tuple[np.ndarray, np.ndarray, float]]) -> ItemScores:
    everyone = np.ones(len(judgments), dtype=bool)
    return ItemScores(
        [j["id"] for j in judgments],
        np.array(["all"] * len(judgments)),
        {("all", m): Decomposition([(num, den)], everyone, empty=empty) for m, (num, den, empty) in metrics.items()},
    )


def gqa(judgments: list[dict], items: dict) -> ItemScores:
    ones = np.ones(len(judgments))
    return _single(judgments, {"accuracy": (_array(j["correct"] for j in judgments), ones, math.nan)})


def vqat(judgments: list[dict], items: dict) -> ItemScores:
    ones = np.ones(len(judgments))
    return _single(judgments, {"accuracy": (_array(j["accuracy"] for j in judgments), ones, math.nan)})


def objhal(judgments: list[dict], items: dict) -> ItemScores:
    ones = np.ones(len(judgments))
    recalled = _array(len(set(j["truth"]) & set(j["mentions"])) for j in judgments)
    present = _array(len(set(j["truth"])) for j in judgments)
    hallucinated = _array(len(j["hallucinated"]) for j in judgments)
    mentions = _array(len(j["mentions"]) for j in judgments)
    return _single(
        judgments,
        {
            "recall": (recalled, present, math.nan),
            "chair_i": (hallucinated, mentions, 0.0),
            "chair_s": (1.0 * (hallucinated > 0), ones, math.nan),
        },
    )


def _judged(judgments: list[dict]) -> list[dict]:
    return [j for j in judgments if j.get("score") is not None]


def mmhal(judgments: list[dict], items: dict) -> ItemScores:
    judged = _judged(judgments)
    scores = _array(j["score"] for j in judged)
    ones = np.ones(len(judged))
    subsets = [j["subset"] for j in judged]
    metrics = _grouped(subsets, "score", scores, ones)
    metrics[("all", "hallucination_rate")] = Decomposition([(1.0 * (scores < 3), ones)], ones > 0)
    return ItemScores([j["id"] for j in judged], np.array(["all"] * len(judged)), metrics)


def llavaw(judgments: list[dict], items: dict) -> ItemScores:
    judged = _judged(judgments)
    scores = _array(j["score"] for j in judged)
    reference = _array(j["details"]["reference_score"] for j in judged)
    ones = np.ones(len(judged))
    metrics = _grouped([j["subset"] for j in judged], "score", scores, reference, scale=100.0)
    metrics[("all", "response_rating")] = Decomposition([(scores, ones)], ones > 0)
    metrics[("all", "reference_rating")] = Decomposition([(reference, ones)], ones > 0)
    return ItemScores([j["id"] for j in judged], np.array(["all"] * len(judged)), metrics)


def mmvet(judgments: list[dict], items: dict) -> ItemScores:
    judged = _judged(judgments)
    scores = _array(j["score"] for j in judged)
    ones = np.ones(len(judged))
    metrics = {("all", "score"): Decomposition([(scores, ones)], ones > 0, scale=100.0)}
    capabilities = [set(items[j["id"]]["meta"].get("capability") or []) for j in judged] if items else []
    for capability in sorted(set().union(*capabilities) - {"all"}) if capabilities else []:
        has = _array(capability in c for c in capabilities)
        metrics[(capability, "score")] = Decomposition([(scores * has, has)], has > 0, scale=100.0)
    return ItemScores([j["id"] for j in judged], np.array(["all"] * len(judged)), metrics)


DECOMPOSE: dict[str, Callable[[list[dict], dict], ItemScores]] = {
    "pope": pope,
    "gqa": gqa,
    "vqat": vqat,
    "objhal": objhal,
    "mmhal": mmhal,
    "mmhalv": mmhal,
    "llavaw": llavaw,
    "mmvet": mmvet,
}


class ItemScoreError(ValueError):
    pass


def check_against(scores: ItemScores, metric_rows: list[dict], where: str) -> None:
    """The decomposition on the full sample must give the number evaluation reported: else it is a bug here, and
    an interval around the wrong number would be published."""
    for row in metric_rows:
        terms = scores.metrics.get((str(row["subset"]), row["metric"]))
        if terms is None:
            continue
        ours, reported = float(terms.value()), float(row["value"])
        same = (math.isnan(ours) and math.isnan(reported)) or math.isclose(ours, reported, rel_tol=1e-9, abs_tol=1e-12)
        if not same:
            raise ItemScoreError(
                f"{where}: {row['subset']}/{row['metric']} is {reported} in metrics.json but {ours} from its items"
            )


def load_item_scores(eval_dir: str | Path, items_jsonl: str | Path | None = None) -> ItemScores | None:
    """The item scores of one results/eval/<variant>/<benchmark> directory (None for a benchmark kind with no
    decomposition), checked against its metrics.json."""
    eval_dir = Path(eval_dir)
    result = json.loads((eval_dir / "metrics.json").read_text())
    decompose = DECOMPOSE.get(result["kind"])
    if decompose is None:
        return None
    items = {}
    if items_jsonl and result["kind"] == "mmvet":
        items = {item["id"]: item for item in read_jsonl(items_jsonl)}
    scores = decompose(read_jsonl(eval_dir / "judgments.jsonl"), items)
    check_against(scores, result["metrics"], str(eval_dir / "metrics.json"))
    return scores
