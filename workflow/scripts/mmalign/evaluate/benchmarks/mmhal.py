"""MMHal-Bench (Sun et al. 2023): open questions about images, judged on the 0-6 rubric; the paper's MMHAL
column. Its judge is text-only (like GPT-4 in the original): it reads the object tags ("image contents"), the
question, the human reference answer and the response. ``mmhalv`` is the same benchmark judged with the
image in view (the paper's MMHal-Bench-V, GPT-4o).

Metrics: ``score`` = mean rating over judged items (overall and per question type), ``hallucination_rate`` =
share of judged items rated below 3 (the rubric's "with hallucination" half), and the judge's counts
(``judged``, ``judge_unparsed``, ``judge_failed``, ``judge_cached``); a failed judgment is never a 0.

Items: ``mmalign.evaluate.snapshots`` (``Shengcao1006/MMHal-Bench``) or a registered source (the synthetic
world's analog: ``mmalign.synthetic.benchmarks.mmhal``). A request carries the item's ``meta.scene`` (a judge that
reads ground truth, the world's exact judge) only when the judge may see the image.
"""

from __future__ import annotations

from mmalign.judges import RateRequest

from .common import empty_answers, judged_rows, prompt, rating_records  # noqa: F401 (prompt: the benchmark's API)

DEFAULTS = {"prompt_suffix": "", "max_new_tokens": 48}
JUDGED = True
SEES_IMAGE = False
RUBRIC = "mmhal"


def rate_requests(items: list[dict], predictions: list[str], sees_image: bool) -> list[RateRequest]:
    return [
        RateRequest(
            id=item["id"],
            rubric=RUBRIC,
            question=item["question"],
            response=text,
            reference=item["answer"],
            image=item["image"] if sees_image else None,
            scene=item["meta"].get("scene") if sees_image else None,
            tags=tuple(item["meta"].get("objects", ())),
        )
        for item, text in zip(items, predictions)
    ]


def score_with(items: list[dict], predictions: list[str], judge, sees_image: bool) -> tuple[list[dict], list[dict]]:
    ratings = judge.rate(rate_requests(items, predictions, sees_image))
    subsets = [item["subset"] for item in items]
    rows = judged_rows(ratings, subsets, lambda rs: sum(r.score for r in rs) / len(rs))
    judged = [r for r in ratings if r.score is not None]
    rate = sum(r.score < 3 for r in judged) / len(judged) if judged else float("nan")
    rows += [
        {"subset": "all", "metric": "hallucination_rate", "value": rate},
        empty_answers(predictions),
        {"subset": "all", "metric": "n", "value": float(len(items))},
    ]
    return rows, rating_records(items, predictions, ratings)


def score(items: list[dict], predictions: list[str], judge) -> tuple[list[dict], list[dict]]:
    return score_with(items, predictions, judge, SEES_IMAGE)
