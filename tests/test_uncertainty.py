"""Intervals on simulated metrics with known truth: coverage of the item bootstrap, pairing, seeds, too few items,
the item decomposition of every benchmark against its scoring code, and claim verdicts on constructed intervals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmalign.evaluate.benchmarks import gqa, llavaw, mmvet, objhal, pope, vqat
from mmalign.judges import Rating
from mmalign.report.claims import FAILS, HOLDS, INCONCLUSIVE, NOT_MEASURED, evaluate_claim, interval_outcome
from mmalign.report.item_scores import DECOMPOSE, Decomposition, ItemScores, check_against
from mmalign.report.metrics import aggregate
from mmalign.report.uncertainty import (
    Interval,
    Settings,
    interval,
    paired_difference,
    resample_counts,
    seed_spread,
)


def binary_run(values, name="acc") -> ItemScores:
    """A run of a plain mean metric (accuracy) over items with these 0/1 (or real) scores."""
    values = np.asarray(values, dtype=float)
    ids = [f"item{i}" for i in range(len(values))]
    terms = Decomposition([(values, np.ones(len(values)))], np.ones(len(values), dtype=bool))
    return ItemScores(ids, np.array(["all"] * len(values)), {("all", name): terms})


KEY = ("all", "acc")
REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("kind", ["mean", "ratio"])
def test_the_item_interval_covers_the_truth_at_its_nominal_level(kind):
    """400 simulated benchmarks of 200 items: the 90% interval holds the true value in 90% +- 4% of them
    (3.3 standard errors of a coverage estimated from 400 data sets)."""
    settings = Settings(bootstrap=400, level=0.90, seed=1)
    world = np.random.default_rng(7)
    truth_p, n, hits, trials = 0.7, 200, 0, 400
    for trial in range(trials):
        if kind == "mean":  # accuracy: the truth is p
            run, truth = binary_run(world.random(n) < truth_p), truth_p
        else:  # a ratio of sums (LLaVA-W): response rating / reference rating, truth E[x] / E[y] = 0.5
            reference = world.uniform(4, 10, n)
            response = reference * world.uniform(0, 1, n)
            terms = Decomposition([(response, reference)], np.ones(n, dtype=bool))
            run, truth = ItemScores([f"i{i}" for i in range(n)], np.array(["all"] * n), {KEY: terms}), 0.5
        found = interval([run], KEY, settings, f"trial{trial}")
        hits += found.low <= truth <= found.high
    assert abs(hits / trials - 0.90) <= 0.04, hits / trials


def test_resampling_stays_inside_each_stratum():
    strata = np.array(["random"] * 30 + ["popular"] * 50 + ["adversarial"] * 20)
    counts = resample_counts(strata, 200, np.random.default_rng(0))
    for stratum, size in (("random", 30), ("popular", 50), ("adversarial", 20)):
        assert (counts[:, strata == stratum].sum(axis=1) == size).all()
    assert counts.std(axis=0).min() > 0  # and it does resample


def test_resampling_draws_the_same_counts_as_one_bincount_per_stratum():
    """The one-pass count (fast) is the per-stratum count it replaced, draw for draw: intervals stay identical."""
    strata = np.array(["random"] * 30 + ["popular"] * 50 + ["adversarial"] * 20)
    rng = np.random.default_rng(3)
    expected = np.zeros(200 * len(strata))
    offsets = np.arange(200)[:, None] * len(strata)
    for stratum in np.unique(strata):
        where = np.flatnonzero(strata == stratum)
        picks = where[rng.integers(0, len(where), size=(200, len(where)))]
        expected += np.bincount((offsets + picks).ravel(), minlength=200 * len(strata))
    assert np.array_equal(resample_counts(strata, 200, np.random.default_rng(3)), expected.reshape(200, -1))


def test_a_subset_metric_under_resampled_weights_equals_the_zero_padded_full_sample():
    """value_at (weights for a subset's positions only) is value() with every other item weighted 0."""
    world = np.random.default_rng(5)
    n, members = 300, np.zeros(300, dtype=bool)
    members[world.choice(n, 90, replace=False)] = True
    parts = [(world.random(n) * members, members.astype(float)), (world.uniform(1, 9, n) * members, members * 9.0)]
    terms = Decomposition(parts, members, scale=100.0)
    index = np.flatnonzero(members)
    counts = world.integers(0, 3, size=(50, len(index))).astype(float)
    padded = np.zeros((50, n))
    padded[:, index] = counts
    assert np.allclose(terms.value_at(index, counts), terms.value(padded), rtol=1e-12, atol=0)
    assert terms.value_at(index, np.ones(len(index))) == pytest.approx(terms.value(members.astype(float)), rel=1e-12)


def test_an_interval_is_seeded_and_independent_of_what_else_was_computed():
    world = np.random.default_rng(3)
    run = binary_run(world.random(100))  # real-valued scores (MM-Vet-like): bounds are not on a coarse grid
    settings = Settings(bootstrap=300, seed=5)
    first = interval([run], KEY, settings, "dpo|pope")
    interval([binary_run(world.random(100) < 0.2)], KEY, settings, "other|pope")
    assert interval([run], KEY, settings, "dpo|pope") == first
    assert interval([run], KEY, Settings(bootstrap=300, seed=6), "dpo|pope") != first


# -------------------------------------------------------------------------------------------- pairing


def test_the_paired_interval_is_narrower_than_the_unpaired_one_on_correlated_items():
    """Two variants answer the same items, which differ in difficulty: pairing cancels the difficulty."""
    world = np.random.default_rng(11)
    n, settings = 300, Settings(bootstrap=1000, seed=2)
    difficulty = world.beta(0.3, 0.3, n)  # most items are easy or hard for both
    left = binary_run(world.random(n) < np.clip(difficulty + 0.05, 0, 1))
    right = binary_run(world.random(n) < difficulty)
    paired = paired_difference([left], [right], KEY, settings, ("left", "right"))
    # unpaired: independent item resamples for the two sides
    a = left.metrics[KEY].value(resample_counts(left.strata, 1000, np.random.default_rng(1)))
    b = right.metrics[KEY].value(resample_counts(right.strata, 1000, np.random.default_rng(2)))
    unpaired_width = np.subtract(*np.quantile(a - b, [0.975, 0.025]))
    assert paired.value == pytest.approx(left.metrics[KEY].value() - right.metrics[KEY].value())
    assert paired.high - paired.low < 0.7 * unpaired_width, (paired, unpaired_width)


def test_a_paired_comparison_keeps_only_items_judged_for_both_sides_and_says_so():
    left, right = binary_run([1, 0] * 30), binary_run([0, 1] * 30)
    right.ids = right.ids[:50] + [f"unjudged{i}" for i in range(10)]  # 10 items the judge missed for `right`
    diff = paired_difference([left], [right], KEY, Settings(bootstrap=200), ("l", "r"))
    assert diff.items == 50 and "paired on 50 items (10 judged for one side only)" in diff.note


# ---------------------------------------------------------------------------------------------- seeds


def test_seed_replicates_widen_the_interval_by_their_spread():
    """Three seeds that disagree by much more than item noise: the combined interval is wider than any one
    seed's item interval, and seed_sd reports the spread."""
    world = np.random.default_rng(4)
    items = world.random(400)
    seeds = [binary_run(items < p) for p in (0.45, 0.6, 0.75)]
    settings = Settings(bootstrap=1000, seed=0)
    combined = interval(seeds, KEY, settings, "dpo")
    alone = interval(seeds[1:2], KEY, settings, "dpo")
    assert combined.value == pytest.approx(np.mean([s.metrics[KEY].value() for s in seeds]))
    assert combined.half_width > 2 * alone.half_width
    assert seed_spread(seeds, KEY) == pytest.approx(np.std([0.45, 0.6, 0.75], ddof=1), abs=0.05)
    assert math.isnan(seed_spread(seeds[:1], KEY))


# ----------------------------------------------------------------------------------------- too few items


def test_a_metric_with_too_few_items_has_no_interval_and_says_why():
    found = interval([binary_run([1, 0, 1, 1, 0] * 2)], KEY, Settings(min_items=20), "x")
    assert not found.measured and math.isnan(found.half_width)  # never a zero width
    assert found.value == pytest.approx(0.6) and found.note == "10 items < report.uncertainty.min_items 20"


def test_metrics_csv_carries_intervals_and_missing_ones_with_their_reason(tmp_path):
    """Two evaluations of a 'gqa' benchmark: a number with its interval, a count without one, and (min_items
    above the items of one) a number whose interval is missing with the reason."""
    files = []
    for variant, n in (("base", 60), ("dpo", 12)):
        folder = tmp_path / "eval" / variant / "gqa"
        folder.mkdir(parents=True)
        items = [{"id": f"q{i}", "answer": "red", "question": "colour?"} for i in range(n)]
        predictions = ["red" if i % 3 else "blue" for i in range(n)]
        rows, judgments = gqa.score(items, predictions)
        (folder / "judgments.jsonl").write_text("".join(json.dumps(j) + "\n" for j in judgments))
        result = {"variant": variant, "benchmark": "gqa", "kind": "gqa", "metrics": rows}
        (folder / "metrics.json").write_text(json.dumps(result))
        files.append(folder / "metrics.json")
    frame = aggregate(files, tmp_path / "metrics.csv", Settings(bootstrap=200, min_items=20))
    frame = frame.set_index(["variant", "metric"])
    base = frame.loc[("base", "accuracy")]
    assert base.ci_low < base.value < base.ci_high and base.ci_items == 60 and base.ci_note == ""
    assert frame.loc[("base", "n")].ci_note == "a count (no interval)" and math.isnan(frame.loc[("base", "n")].ci_low)
    short = frame.loc[("dpo", "accuracy")]
    assert math.isnan(short.ci_low) and "12 items < report.uncertainty.min_items 20" in short.ci_note
    reread = pd.read_csv(tmp_path / "metrics.csv")
    assert {"ci_low", "ci_high", "ci_items", "ci_note", "seeds", "seed_sd"} <= set(reread.columns)


def test_a_replicated_variant_gets_rows_over_its_seeds(tmp_path):
    files = []
    for run, shift in (("dpo/seed0", 0), ("dpo/seed1", 1), ("dpo/seed2", 2)):
        folder = tmp_path / "eval" / run / "gqa"
        folder.mkdir(parents=True)
        items = [{"id": f"q{i}", "answer": "red", "question": "?"} for i in range(90)]
        rows, judgments = gqa.score(items, ["red" if (i + shift) % (3 + shift) else "blue" for i in range(90)])
        (folder / "judgments.jsonl").write_text("".join(json.dumps(j) + "\n" for j in judgments))
        (folder / "metrics.json").write_text(
            json.dumps({"variant": run, "benchmark": "gqa", "kind": "gqa", "metrics": rows})
        )
        files.append(folder / "metrics.json")
    groups = {"dpo": ["dpo/seed0", "dpo/seed1", "dpo/seed2"]}
    frame = aggregate(files, tmp_path / "m.csv", Settings(bootstrap=300), groups).set_index(["variant", "metric"])
    group = frame.loc[("dpo", "accuracy")]
    runs = [frame.loc[(r, "accuracy")].value for r in groups["dpo"]]
    assert group.seeds == 3 and group.value == pytest.approx(np.mean(runs))
    assert group.seed_sd == pytest.approx(np.std(runs, ddof=1))
    assert group.ci_low < group.value < group.ci_high


def test_metrics_csv_is_the_same_file_for_any_number_of_worker_processes(tmp_path):
    """aggregate(workers=N) splits the evaluations over processes; every draw is seeded by what it resamples, so
    the file is byte-identical to one process's: a replicated variant on two benchmarks (one of which a seed run
    lacks: its runs get rows, the variant none), and a variant alone."""
    files = []
    runs = {"dpo/seed0": 0, "dpo/seed1": 1, "dpo/seed2": 2, "base": 3}
    for run, shift in runs.items():
        for benchmark, n in (("gqa", 90), ("vqat", 60)):
            if run == "dpo/seed2" and benchmark == "vqat":
                continue
            folder = tmp_path / "eval" / run / benchmark
            folder.mkdir(parents=True)
            items = [{"id": f"q{i}", "answer": "red", "question": "?"} for i in range(n)]
            rows, judgments = gqa.score(items, ["red" if (i + shift) % (3 + shift) else "blue" for i in range(n)])
            (folder / "judgments.jsonl").write_text("".join(json.dumps(j) + "\n" for j in judgments))
            result = {"variant": run, "benchmark": benchmark, "kind": "gqa", "metrics": rows}
            (folder / "metrics.json").write_text(json.dumps(result))
            files.append(folder / "metrics.json")
    groups = {"dpo": ["dpo/seed0", "dpo/seed1", "dpo/seed2"]}
    one = aggregate(files, tmp_path / "one.csv", Settings(bootstrap=300), groups)
    aggregate(files, tmp_path / "three.csv", Settings(bootstrap=300), groups, workers=3)
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "three.csv").read_bytes()
    variants = {(v, b) for v, b in zip(one.variant, one.benchmark)}
    assert ("dpo", "gqa") in variants and ("dpo", "vqat") not in variants and ("dpo/seed0", "vqat") in variants
    assert not one.duplicated(["variant", "benchmark", "subset", "metric"]).any()


# --------------------------------------------------------------------- decompositions = the scoring code


class TableJudge:
    """A judge whose ratings are given per item (the scoring code's input here, not what is tested)."""

    def __init__(self, ratings):
        self.ratings = ratings

    def rate(self, requests):
        return [self.ratings[r.id] for r in requests]


def _items(n, subsets, **meta):
    return [
        {"id": f"x{i}", "question": "q", "answer": "red", "subset": subsets[i % len(subsets)], "meta": dict(meta)}
        for i in range(n)
    ]


def test_every_decomposition_reproduces_its_benchmarks_metrics():
    world = np.random.default_rng(0)
    words = ["yes", "no", "maybe", "red", "blue", "circle"]
    cases = {}
    items = _items(60, pope.SPLITS)
    for it in items:
        it["answer"] = world.choice(["yes", "no"])
    cases["pope"] = pope.score(items, [str(world.choice(words)) for _ in items])
    cases["gqa"] = gqa.score(items, [str(world.choice(words)) for _ in items])
    vq = _items(40, ["all"], answers=["red"] * 6 + ["blue"] * 4)
    cases["vqat"] = vqat.score(vq, [str(world.choice(words)) for _ in vq])
    shapes = ["circle", "square", "triangle", "star"]
    oh = _items(40, ["all"])
    for it in oh:
        it["meta"]["objects"] = list(world.choice(shapes, size=2, replace=False))
    reader = type("Shapes", (), {"mentions": lambda self, t: [w for w in t.split() if w in shapes]})()
    cases["objhal"] = objhal.score(oh, [" ".join(world.choice(shapes + ["and"], size=3)) for _ in oh], reader)
    judged = _items(50, ["conv", "detail", "complex"], capability=["rec", "ocr"])
    for i, it in enumerate(judged):
        it["meta"]["capability"] = [["rec"], ["ocr"], ["rec", "ocr"], []][i % 4]
    ratings = {
        it["id"]: Rating(
            id=it["id"],
            status="ok" if i % 7 else "failed",
            reason="",
            raw=None,
            judge_id="t",
            prompt_hash="",
            cached=False,
            score=float(world.integers(1, 10)) if i % 7 else None,
            details={"reference_score": float(world.integers(5, 10))},
        )
        for i, it in enumerate(judged)
    }
    cases["llavaw"] = llavaw.score(judged, ["a"] * 50, TableJudge(ratings))
    unit = {
        k: Rating(**{**r.to_record(), "score": None if r.score is None else r.score / 10}) for k, r in ratings.items()
    }
    cases["mmvet"] = mmvet.score(judged, ["a"] * 50, TableJudge(unit))
    by_id = {it["id"]: it for it in judged}
    for kind, (rows, judgments) in cases.items():
        scores = DECOMPOSE[kind](judgments, by_id)
        check_against(scores, rows, kind)  # raises on any difference
        covered = {(str(r["subset"]), r["metric"]) for r in rows} & set(scores.metrics)
        assert len(covered) >= 1, kind
    assert len(DECOMPOSE["pope"](cases["pope"][1], {}).metrics) == 5 * 4  # 5 metrics x (3 splits + all)


def test_a_decomposition_that_disagrees_with_metrics_json_is_an_error():
    items = _items(30, ["all"])
    rows, judgments = gqa.score(items, ["red"] * 20 + ["blue"] * 10)
    rows[0]["value"] += 0.01
    with pytest.raises(ValueError, match="accuracy is .* in metrics.json but"):
        check_against(DECOMPOSE["gqa"](judgments, {}), rows, "results/eval/x/gqa/metrics.json")


# ---------------------------------------------------------------------------------------------- verdicts


@pytest.mark.parametrize(
    "op, low, high, expected",
    [
        (">", 0.5, 2.0, True),  # excludes 0 in the claimed direction
        (">", -2.0, -0.5, False),  # excludes 0 the other way
        (">", -0.5, 2.0, INCONCLUSIVE),
        ("<", -2.0, -0.5, True),
        ("<", 0.5, 2.0, False),
        ("<", -1.0, 1.0, INCONCLUSIVE),
        (">=", 0.0, 1.0, True),
        (">", 0.0, 1.0, INCONCLUSIVE),
    ],
)
def test_a_comparison_is_judged_on_its_interval(op, low, high, expected):
    assert interval_outcome(Interval((low + high) / 2, low, high), op) == expected


def test_a_margin_shifts_the_interval_in_the_papers_units():
    assert interval_outcome(Interval(-0.3, -0.8, -0.1), ">=", margin=1.0) is True  # within 1 point
    assert interval_outcome(Interval(-0.3, -0.8, -0.1), ">=") is False


def test_a_difference_without_an_interval_is_inconclusive():
    assert interval_outcome(Interval(3.0, note="10 items < report.uncertainty.min_items 20"), ">") == INCONCLUSIVE


@pytest.mark.parametrize(
    "diffs, verdict",
    [
        ({"POPE": (1, 3), "MMVet": (-4, -1)}, HOLDS),
        ({"POPE": (1, 3), "MMVet": (1, 4)}, FAILS),  # MMVet rose: the claim says it falls
        ({"POPE": (-1, 3), "MMVet": (-4, -1)}, INCONCLUSIVE),
        ({"POPE": (-1, 3), "MMVet": (1, 4)}, FAILS),  # one comparison failing decides
    ],
)
def test_claim_verdicts_on_constructed_intervals(diffs, verdict):
    claim = {
        "checks": [
            {"left": "dpo", "op": ">", "right": "base", "column": "POPE"},
            {"left": "dpo", "op": "<", "right": "base", "column": "MMVet"},
        ]
    }
    values = {("dpo", "POPE"): 85.0, ("base", "POPE"): 84.0, ("dpo", "MMVet"): 40.0, ("base", "MMVet"): 42.0}

    def compare(left, right, column):
        low, high = diffs[column]
        return Interval((low + high) / 2, low, high, 100)

    result = evaluate_claim(claim, lambda v, c: values[(v, c)], compare=compare)
    assert result["verdict"] == verdict, result
    assert "diff" in result["evidence"] and "[" in result["evidence"]
    # the same numbers judged alone (a single run): the point comparison
    assert evaluate_claim(claim, lambda v, c: values[(v, c)])["verdict"] == HOLDS


def test_a_best_of_check_needs_every_pairwise_interval():
    claim = {"checks": [{"best": "a", "among": ["b", "c"], "column": "POPE"}]}
    values = {"a": 90.0, "b": 88.0, "c": 80.0}
    intervals = {("a", "b"): (-0.5, 4.0), ("a", "c"): (8.0, 12.0)}
    result = evaluate_claim(claim, lambda v, c: values[v], compare=lambda a, b, c: Interval(0, *intervals[(a, b)], 50))
    assert result["verdict"] == INCONCLUSIVE and "vs b (diff" in result["evidence"]
    intervals[("a", "b")] = (0.5, 4.0)
    assert (
        evaluate_claim(claim, lambda v, c: values[v], compare=lambda a, b, c: Interval(0, *intervals[(a, b)], 50))[
            "verdict"
        ]
        == HOLDS
    )
    missing = evaluate_claim(claim, lambda v, c: math.nan if v == "c" else values[v], compare=lambda *a: Interval(0))
    assert missing["verdict"] == NOT_MEASURED


def _gqa_eval(root, run, correct):
    """An evaluation of a 'gqa' benchmark whose i-th item is right when correct[i]."""
    folder = root / "eval" / run / "gqa"
    folder.mkdir(parents=True)
    items = [{"id": f"q{i}", "answer": "red", "question": "?"} for i in range(len(correct))]
    rows, judgments = gqa.score(items, ["red" if c else "blue" for c in correct])
    (folder / "judgments.jsonl").write_text("".join(json.dumps(j) + "\n" for j in judgments))
    (folder / "metrics.json").write_text(
        json.dumps({"variant": run, "benchmark": "gqa", "kind": "gqa", "metrics": rows})
    )
    return folder / "metrics.json"


def test_the_scorecard_judges_a_replicated_variant_on_seeds_and_items(tmp_path):
    """dpo (3 seeds, 80-90% right) against base (50%) on 100 GQA items: the claim holds on the paired interval,
    and claims_comparisons.csv lists the comparison with dpo's seed spread."""
    import yaml

    from mmalign.report.claims import write_scorecard
    from mmalign.report.metrics import Evaluations

    world = np.random.default_rng(0)
    files = [_gqa_eval(tmp_path, "base", world.random(100) < 0.5)]
    files += [_gqa_eval(tmp_path, f"dpo/seed{k}", world.random(100) < p) for k, p in enumerate((0.8, 0.85, 0.9))]
    groups = {"dpo": ["dpo/seed0", "dpo/seed1", "dpo/seed2"]}
    settings = Settings(bootstrap=300)
    aggregate(files, tmp_path / "metrics.csv", settings, groups)
    columns = {"GQA": {"benchmark": "gqa", "metric": "accuracy", "scale": 100}}
    claims = tmp_path / "claims.yaml"
    claims.write_text(yaml.safe_dump([{"id": 1, "claim": "DPO helps GQA", "checks": [
        {"left": "dpo", "op": ">", "right": "base", "column": "GQA"}]}]))  # fmt: skip
    card = write_scorecard(
        tmp_path / "metrics.csv", claims, columns, "t", tmp_path / "c.csv", tmp_path / "c.md",
        evals=Evaluations(files), groups=groups, settings=settings, out_comparisons=tmp_path / "cc.csv",
    )  # fmt: skip
    assert card.loc[0, "verdict"] == HOLDS and card.loc[0, "point_verdict"] == HOLDS
    row = pd.read_csv(tmp_path / "cc.csv").iloc[0]
    assert (row.left, row.right, row["column"]) == ("dpo", "base", "GQA") and 0 < row.low < row["diff"] < row.high
    assert row.left_seed_sd > 0 and math.isnan(row.right_seed_sd)  # base has one run
    assert "(95% paired intervals)" in (tmp_path / "c.md").read_text()
    assert "paper_diff" not in row.index  # no published numbers given
    published = tmp_path / "paper.csv"
    published.write_text("table,row,column,value\ntable2,base,GQA,60.0\ntable2,dpo,GQA,95.0\n")
    write_scorecard(
        tmp_path / "metrics.csv", claims, columns, "t", tmp_path / "c.csv", tmp_path / "c.md", published_csv=published,
        evals=Evaluations(files), groups=groups, settings=settings, out_comparisons=tmp_path / "cc.csv",
    )  # fmt: skip
    row = pd.read_csv(tmp_path / "cc.csv").iloc[0]
    assert row.paper_diff == pytest.approx(35.0) and row.low < 35.0 < row.high and bool(row.paper_in_interval)
    assert "Of the 0 comparisons whose interval includes 0, 0 exclude" in (tmp_path / "c.md").read_text()


def test_the_seed_spread_benchmark_reads_a_finished_study(tmp_path, capsys):
    """benchmarks/seed_spread.py: the spread of each replicated variant, and of each claim comparison against
    its effect, from metrics.csv and claims_comparisons.csv."""
    import importlib.util

    import yaml

    from mmalign.report.claims import write_scorecard
    from mmalign.report.metrics import Evaluations

    world = np.random.default_rng(1)
    files = [_gqa_eval(tmp_path, "base", world.random(100) < 0.5)]
    files += [_gqa_eval(tmp_path, f"dpo/seed{k}", world.random(100) < p) for k, p in enumerate((0.5, 0.6, 0.7))]
    groups = {"dpo": ["dpo/seed0", "dpo/seed1", "dpo/seed2"]}
    tables = tmp_path / "results" / "tables"
    tables.mkdir(parents=True)
    aggregate(files, tables / "metrics.csv", Settings(bootstrap=200), groups)
    columns = {"GQA": {"benchmark": "gqa", "metric": "accuracy", "scale": 100}}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"report": {"columns": columns}}))
    claims = tmp_path / "claims.yaml"
    claims.write_text(yaml.safe_dump([{"id": 1, "claim": "c", "checks": [
        {"left": "dpo", "op": ">", "right": "base", "column": "GQA"}]}]))  # fmt: skip
    write_scorecard(
        tables / "metrics.csv", claims, columns, "t", tables / "claims.csv", tables / "claims.md",
        evals=Evaluations(files), groups=groups, settings=Settings(bootstrap=200),
        out_comparisons=tables / "claims_comparisons.csv",
    )  # fmt: skip
    spec = importlib.util.spec_from_file_location("seed_spread", REPO / "benchmarks" / "seed_spread.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    published = tmp_path / "paper.csv"
    published.write_text("table,row,column,value\ntable2,base,GQA,60.0\ntable2,dpo,GQA,90.0\n")  # effect 30
    args = [
        "--from",
        str(tmp_path),
        "--configfile",
        str(config),
        "--claims",
        str(claims),
        "--published",
        str(published),
    ]
    assert module.main([*args, "--json", str(tmp_path / "s.json")]) == 0
    summary = json.loads((tmp_path / "s.json").read_text())
    runs = pd.read_csv(tables / "metrics.csv").query("metric == 'accuracy' and variant.str.startswith('dpo/')")
    assert summary["median_seed_sd"]["GQA"] == pytest.approx(100 * runs.value.std(ddof=1))
    # the seeds spread about 10 points (accuracies near 0.5, 0.6, 0.7): below the paper's 30, resolvable at 3 seeds
    paper = summary["against_paper"]
    assert paper["comparisons_with_paper_effect"] == 1 and paper["median_paper_effect"] == {"GQA": 30.0}
    assert paper["seed_spread_larger_than_paper_effect"] == 0 and paper["paper_effect_resolvable_with_seeds"]["3"] == 1
    published.write_text("table,row,column,value\ntable2,base,GQA,60.0\ntable2,dpo,GQA,61.0\n")  # effect 1
    assert module.main([*args, "--json", str(tmp_path / "s.json")]) == 0
    paper = json.loads((tmp_path / "s.json").read_text())["against_paper"]
    assert paper["seed_spread_larger_than_paper_effect"] == 1 and paper["paper_effect_resolvable_with_seeds"]["20"] == 0
    assert summary["comparisons"] == 1 and summary["comparisons_with_seed_spread"] == 1
    assert summary["reading"] is None
    bounds = pd.DataFrame({"low": [1.0, -1.0, -2.0, math.nan], "high": [2.0, 1.0, -1.0, math.nan]})
    assert module.excludes_zero(bounds).tolist() == [True, False, True, False]
    assert "Seed spread" in capsys.readouterr().out
    # --reading: the comparisons with that variant on a side; one no comparison reads is named, not counted as none
    assert module.main([*args, "--reading", "dpo", "--json", str(tmp_path / "r.json")]) == 0
    read = json.loads((tmp_path / "r.json").read_text())
    assert read["reading"] == ["dpo"] and read["comparisons"] == 1
    sides = pd.DataFrame({"left": ["dpo", "ipo", "base"], "right": ["base", "base", "dpo"]})
    assert module.reading(sides, ["ipo"]).left.tolist() == ["ipo"]
    assert module.reading(sides, ["dpo"]).left.tolist() == ["dpo", "base"]
    with pytest.raises(SystemExit):
        module.main([*args, "--reading", "dpo_typo"])
    assert "no claim comparison reads dpo_typo" in capsys.readouterr().err
    assert set(summary["resolvable_with_seeds"]) == {"3", "5", "10", "20"}
    # spread 2 against an effect of 1: 1.96 * 2 / sqrt(n) < 1 first at n = 16; twice the effect: n = 4
    assert module.seeds_to_resolve(2.0, 1.0) == 16 and module.seeds_to_resolve(2.0, 2.0) == 4
    assert module.seeds_to_resolve(2.0, 0.0) == math.inf and math.isnan(module.seeds_to_resolve(math.nan, 1.0))
    assert summary["of_which_effect_within_base_model_spread"] == 0  # one base build: no base spread to compare
    # an effect of 1 point is within a base model that moves 2 points between builds; one of 3 points is not
    spreads = pd.DataFrame({"GQA": [2.0, 5.0]}, index=["base", "dpo"])
    noise = pd.DataFrame({"column": ["GQA", "GQA", "POPE"], "effect": [1.0, 3.0, 0.1]})
    assert module.within_base_noise(noise, spreads).tolist() == [True, False, False]


def test_the_papers_own_difference_of_each_comparison_is_read_as_its_verdict_reads_it():
    """The paper's own left - right for each comparison, from the claim's table first (the paper's tables
    disagree, e.g. Table 9's baseline), a constant right side as is, NaN where the paper has no number; whether
    our interval contains it; and, in benchmarks/seed_spread.py, comparisons without a seed spread or a paper
    effect left out of the yardstick."""
    import importlib.util

    from mmalign.report.claims import paper_differences, paper_in_interval, smaller_than_paper

    spec = importlib.util.spec_from_file_location("seed_spread", REPO / "benchmarks" / "seed_spread.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    published = pd.DataFrame(
        {"table": ["table2", "table2", "table9", "table9"], "row": ["base", "dpo", "base", "dpo"],
         "column": ["POPE"] * 4, "value": [86.4, 88.1, 85.0, 89.0]}
    )  # fmt: skip
    claims = [{"id": 1, "table": "table2"}, {"id": 2, "table": "table9"}, {"id": 3}]
    comparisons = pd.DataFrame(
        {"id": [1, 2, 3, 1, 1], "column": ["POPE", "POPE", "POPE", "POPE", "GQA"],
         "left": ["dpo", "dpo", "dpo", "dpo", "dpo"], "right": ["base", "base", "base", "80.0", "base"]}
    )  # fmt: skip
    paper = paper_differences(comparisons, claims, published)
    assert paper[:4] == pytest.approx([1.7, 4.0, 1.7, 8.1])  # claim 3 names no table: the first table's numbers
    assert math.isnan(paper[4])  # the paper reports no GQA here
    intervals = comparisons.assign(low=[-1.0, 3.0, 0.5, -1.0, -1.0], high=[1.0, 5.0, 2.0, 9.0, 1.0], paper_diff=paper)
    inside = paper_in_interval(intervals)
    assert inside == [False, True, True, True, None]
    # of the three intervals that include 0, the first excludes the paper's 1.7; the last has no paper number
    assert smaller_than_paper(intervals.assign(paper_in_interval=inside)) == (3, 1)
    noise = comparisons.assign(seed_spread=[2.0, 2.0, math.nan, 2.0, 2.0], effect=1.0)
    frame = module.against_paper(noise, paper)
    assert frame.index.tolist() == [0, 1, 3]
    assert frame.paper_effect.tolist() == pytest.approx([1.7, 4.0, 8.1])
    assert frame.seeds_for_paper_effect.tolist() == [6, 1, 1]  # the fewest n with 1.96 * 2 / sqrt(n) < effect


def test_the_claims_comparison_benchmark_counts_verdict_changes_and_interval_widths():
    """benchmarks/compare_claims.py on constructed scorecards: a claim that stays, one that turns inconclusive ->
    holds; widths and zero-excluding intervals per column, over the comparisons both studies measured."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("compare_claims", REPO / "benchmarks" / "compare_claims.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    before = pd.DataFrame({"id": [1, 2], "verdict": ["does not hold", "inconclusive"]})
    after = pd.DataFrame({"id": [1, 2], "verdict": ["does not hold", "holds"]})
    changes = module.verdict_changes(before, after)
    assert changes.changed.tolist() == [False, True]
    assert module.transition_counts(changes) == {"does not hold -> does not hold": 1, "inconclusive -> holds": 1}
    keys = {"id": [1, 1, 2], "column": ["POPE", "GQA", "GQA"], "left": ["a", "a", "b"], "right": ["base"] * 3}
    wide = pd.DataFrame({**keys, "low": [-1.0, -6.0, -2.0], "high": [3.0, 6.0, 10.0]})
    narrow = pd.DataFrame({**keys, "low": [0.5, -3.0, 1.0], "high": [2.5, 3.0, 5.0]})
    widths = module.interval_widths(wide, narrow).set_index("column")
    assert widths.loc["GQA", "median_width_before"] == 12.0 and widths.loc["GQA", "median_width_after"] == 5.0
    assert widths.loc["POPE", "exclude_zero_before"] == 0 and widths.loc["POPE", "exclude_zero_after"] == 1
    assert widths.comparisons.sum() == 3


def test_the_seed_spread_of_a_difference_is_paired_by_seed_when_both_sides_have_seed_runs():
    """benchmarks/seed_spread.py: runs k of two sides share base model k (replicates.base_model), so the spread of
    the difference is that of the per-seed differences; a side without seed runs falls back to quadrature."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("seed_spread", REPO / "benchmarks" / "seed_spread.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    base, dpo = [0.80, 0.86, 0.90], [0.82, 0.88, 0.92]  # each side spread ~5 points; the difference always 2
    rows = [{"variant": f"{v}/seed{k}", "benchmark": "pope", "metric": "accuracy", "subset": "all", "value": x}
            for v, values in (("base", base), ("dpo", dpo)) for k, x in enumerate(values)]  # fmt: skip
    metrics = pd.DataFrame(rows)
    columns = {"POPE": {"benchmark": "pope", "metric": "accuracy", "subset": "all", "scale": 100}}
    comparisons = pd.DataFrame(
        {"column": ["POPE", "POPE"], "left": ["dpo", "dpo"], "right": ["base", "other"], "diff": [2.0, 2.0],
         "left_seed_sd": [5.03, 5.03], "right_seed_sd": [5.03, math.nan]}
    )  # fmt: skip
    assert module.run_values(metrics, "dpo", columns["POPE"]) == pytest.approx([82.0, 88.0, 92.0])
    paired = module.paired_spreads(metrics, comparisons, columns)
    assert paired[0] == pytest.approx(0.0, abs=1e-9) and math.isnan(paired[1])
    noise = module.comparison_noise(comparisons, paired)
    assert noise.seed_spread.tolist() == pytest.approx([0.0, 5.03]) and noise.paired.tolist() == [True, False]


def test_the_seed_spread_benchmark_shows_each_run_and_which_run_most_variants_have_lowest(tmp_path, capsys):
    """benchmarks/seed_spread.py --runs POPE: variant x run k (run k from base model k), and how many variants have
    their lowest value in run k (a weak base-model build pulls every variant down in one run)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("seed_spread", REPO / "benchmarks" / "seed_spread.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    values = {"base": [0.69, 0.83, 0.82], "dpo": [0.71, 0.91, 0.90], "ipo": [0.84, 0.78, 0.80]}
    rows = [{"variant": f"{v}/seed{k}", "benchmark": "pope", "metric": "accuracy", "subset": "all", "value": x}
            for v, xs in values.items() for k, x in enumerate(xs)]  # fmt: skip
    column = {"benchmark": "pope", "metric": "accuracy", "subset": "all", "scale": 100}
    runs = module.seed_runs(pd.DataFrame(rows), ["base", "dpo", "ipo"], column)
    assert runs.loc["dpo"].tolist() == pytest.approx([71.0, 91.0, 90.0]) and list(runs.columns) == [0, 1, 2]
    assert module.lowest_run_counts(runs) == {0: 2, 1: 1}
    config = tmp_path / "config.yaml"
    config.write_text("report:\n  columns:\n    POPE: {benchmark: pope, metric: accuracy, scale: 100}\n")
    with pytest.raises(SystemExit):
        module.main(["--from", str(tmp_path), "--configfile", str(config), "--runs", "Pope"])
    assert "--runs Pope: not a column of report.columns" in capsys.readouterr().err


def test_the_single_run_scorecard_reads_run_zero_of_each_replicated_variant_alone():
    """benchmarks/single_run_claims.py: a replicated variant's group row (the mean over seeds) is replaced by its
    run 0, renamed to the variant with one seed; unreplicated variants stay; a study without run 0 is refused."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("single_run_claims", REPO / "benchmarks" / "single_run_claims.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = [("base", 0.85, 3), ("base/seed0", 0.84, 1), ("base/seed1", 0.90, 1), ("base/seed2", 0.81, 1),
            ("dpo", 0.88, 3), ("dpo/seed0", 0.93, 1), ("dpo/seed1", 0.84, 1), ("dpo/seed2", 0.87, 1),
            ("ipo", 0.80, 1)]  # fmt: skip
    metrics = pd.DataFrame(
        [{"variant": v, "benchmark": "pope", "subset": "all", "metric": "accuracy", "value": x, "seeds": n,
          "seed_sd": 0.03 if n > 1 else math.nan} for v, x, n in rows]
    )  # fmt: skip
    single, groups = module.run_zero_metrics(metrics)
    assert groups == {"base": ["base/seed0"], "dpo": ["dpo/seed0"]}
    values = single.set_index("variant").value.to_dict()
    assert values == {"ipo": 0.80, "base": 0.84, "dpo": 0.93}
    assert set(single.seeds) == {1} and single.seed_sd.isna().all()
    with pytest.raises(SystemExit, match="no run 0.*dpo"):
        module.run_zero_metrics(metrics[metrics.variant != "dpo/seed0"])
    compare = importlib.util.spec_from_file_location("compare_claims", REPO / "benchmarks" / "compare_claims.py")
    claims = importlib.util.module_from_spec(compare)
    compare.loader.exec_module(claims)
    points = pd.DataFrame(
        {"id": [1], "column": ["POPE"], "left": ["dpo"], "right": ["base"], "diff": [9.0], "low": [math.nan],
         "high": [math.nan]}
    )  # fmt: skip
    assert claims.interval_widths(points, points).empty  # single numbers: no interval to compare, no error
