"""LLaVA-Bench-in-the-Wild (Liu et al. 2023): free-form answers scored *relative to a reference answer*; the
paper's LLaVAW column. The judge rates the reference (assistant 1) and the response (assistant 2) from 1 to
10; ``score`` = 100 * sum(response ratings) / sum(reference ratings) over judged items, overall and per
category (conv, detail, complex), as in LLaVA's ``summarize_gpt_review.py``. lmms-eval reports the same ratio
per category and averages categories for its overall number; ours pools all items (LLaVA's "all" row).

Items: ``mmalign.evaluate.snapshots`` (``lmms-lab/llava-bench-in-the-wild``) or a registered source (the synthetic
world's analog: ``mmalign.synthetic.benchmarks.llavaw``).
"""

from __future__ import annotations

from mmalign.judges import RateRequest

from .common import empty_answers, judged_rows, prompt, rating_records  # noqa: F401 (prompt: the benchmark's API)

DEFAULTS = {"prompt_suffix": "", "max_new_tokens": 48}
JUDGED = True


def relative_score(ratings) -> float:
    reference = sum(r.details["reference_score"] for r in ratings)
    return 100 * sum(r.score for r in ratings) / reference if reference else float("nan")


def score(items: list[dict], predictions: list[str], judge) -> tuple[list[dict], list[dict]]:
    requests = [
        RateRequest(
            id=item["id"],
            rubric="llavaw",
            question=item["question"],
            response=text,
            reference=item["answer"],
            context=item["meta"].get("context", ""),
            scene=item["meta"].get("scene"),
        )
        for item, text in zip(items, predictions)
    ]
    ratings = judge.rate(requests)
    rows = judged_rows(ratings, [item["subset"] for item in items], relative_score)
    judged = [r for r in ratings if r.score is not None]
    for metric, values in (
        ("response_rating", [r.score for r in judged]),
        ("reference_rating", [r.details["reference_score"] for r in judged]),
    ):
        rows.append({"subset": "all", "metric": metric, "value": sum(values) / len(values) if values else float("nan")})
    rows += [empty_answers(predictions), {"subset": "all", "metric": "n", "value": float(len(items))}]
    return rows, rating_records(items, predictions, ratings)
