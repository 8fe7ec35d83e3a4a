"""MM-Vet (Yu et al. 2023): integrated capabilities, each answer graded 0.0-1.0 against the ground truth by
the standard grader (``judges.prompts.MMVET``); the paper's MMVet column. ``score`` = 100 x mean correctness
over judged items, overall and per capability (an item with several capabilities counts in each), as in
MM-Vet's ``mm-vet_evaluator``. MM-Vet's script asks the grader up to 5 times with rising temperature and
then scores 0.0; we ask once (greedy), cache the answer and count an unreadable grade as unparsed.

Items: ``mmalign.evaluate.snapshots`` (``lmms-lab/MMVet``) or a registered source (the synthetic world's analog:
``mmalign.synthetic.benchmarks.mmvet``).
"""

from __future__ import annotations

from collections import defaultdict

from mmalign.judges import RateRequest, summarize

from .common import empty_answers, prompt, rating_records  # noqa: F401 (prompt: the benchmark's API)

DEFAULTS = {"prompt_suffix": "", "max_new_tokens": 48}
JUDGED = True


def score(items: list[dict], predictions: list[str], judge) -> tuple[list[dict], list[dict]]:
    requests = [
        RateRequest(
            id=item["id"],
            rubric="mmvet",
            question=item["question"],
            response=text,
            reference=item["answer"],
            scene=item["meta"].get("scene"),
        )
        for item, text in zip(items, predictions)
    ]
    ratings = judge.rate(requests)
    by_capability = defaultdict(list)
    for item, rating in zip(items, ratings):
        if rating.score is not None:
            for capability in item["meta"].get("capability") or ["all"]:
                by_capability[capability].append(rating.score)
    judged = [r.score for r in ratings if r.score is not None]
    rows = [{"subset": "all", "metric": "score", "value": 100 * sum(judged) / len(judged) if judged else float("nan")}]
    rows += [
        {"subset": c, "metric": "score", "value": 100 * sum(v) / len(v)}
        for c, v in sorted(by_capability.items())
        if c != "all"
    ]
    rows += [{"subset": "all", "metric": k, "value": v} for k, v in summarize(ratings).items() if k != "ties"]
    rows += [empty_answers(predictions), {"subset": "all", "metric": "n", "value": float(len(items))}]
    return rows, rating_records(items, predictions, ratings)
