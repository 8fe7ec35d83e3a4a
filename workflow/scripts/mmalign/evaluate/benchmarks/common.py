"""What several benchmarks share: the prompt, and tidy rows from judged scores."""

from __future__ import annotations

from collections import defaultdict

from mmalign.judges import Rating, summarize


def prompt(item: dict, suffix: str) -> str:
    return f"{item['question']} {suffix}".strip()


def judged_rows(ratings: list[Rating], subsets: list[str], aggregate, metric: str = "score") -> list[dict]:
    """``metric`` per subset and over all (``aggregate(ratings) -> float``, on judged ratings only), and the
    judge's counts (judged, ties, unparsed, failed, cached) beside it, so a failed judgment is never a score."""
    by_subset = defaultdict(list)
    for rating, subset in zip(ratings, subsets):
        by_subset[subset].append(rating)
    rows = []
    for subset in ["all"] + sorted(s for s in by_subset if s != "all"):
        group = ratings if subset == "all" else by_subset[subset]
        judged = [r for r in group if r.score is not None]
        rows.append({"subset": subset, "metric": metric, "value": aggregate(judged) if judged else float("nan")})
    rows += [{"subset": "all", "metric": k, "value": v} for k, v in summarize(ratings).items() if k != "ties"]
    return rows


def rating_records(items: list[dict], predictions: list[str], ratings: list[Rating]) -> list[dict]:
    """One judgments.jsonl record per item: the raw judgment with the judge id and prompt hash."""
    return [
        {"id": it["id"], "subset": it["subset"], "prediction": p, **r.to_record()}
        for it, p, r in zip(items, predictions, ratings)
    ]


def empty_answers(predictions: list[str]) -> dict:
    return {"subset": "all", "metric": "empty_answers", "value": float(sum(not p.strip() for p in predictions))}
