"""GQA (Hudson & Manning 2019): compositional questions with short answers; the paper's GQA column.

Metric: ``accuracy`` = exact match of the normalized answer with the normalized ground truth (0-1), the
testdev-balanced protocol of LLaVA's ``eval_gqa.py`` / lmms-eval. Normalization (``normalize_short``): lower
case, surrounding whitespace and trailing full stops removed, inner whitespace collapsed. (LLaVA's script
also strips a trailing period only; lmms-eval compares lower-cased, stripped strings, so "Yes." is wrong
there and right here.)

Parse rule (``Reader``): the whole normalized answer; empty = *unparsed* (counted, scored wrong). A registered
source brings its own reader (the synthetic world's colours and shapes: ``mmalign.synthetic.benchmarks.gqa``).
"""

from __future__ import annotations

from .common import prompt  # noqa: F401 (the benchmark's API)

DEFAULTS = {"prompt_suffix": "", "max_new_tokens": 16}
JUDGED = False


def normalize_short(text: str) -> str:
    return " ".join(text.strip().lower().rstrip(".").split())


class Reader:
    """The parse rule of GQA answers (module docstring)."""

    def answer(self, text: str, item: dict) -> str | None:
        """The parsed answer; None = unparsed."""
        return normalize_short(text) or None

    def truth(self, item: dict) -> str:
        return normalize_short(item["answer"])


READER = Reader()


def score(items: list[dict], predictions: list[str], reader: Reader = READER) -> tuple[list[dict], list[dict]]:
    judgments = []
    for item, text in zip(items, predictions):
        parsed, truth = reader.answer(text, item), reader.truth(item)
        judgments.append(
            {"id": item["id"], "parsed": parsed, "truth": truth, "correct": parsed is not None and parsed == truth}
        )
    n = len(items)
    rows = [
        {
            "subset": "all",
            "metric": "accuracy",
            "value": sum(j["correct"] for j in judgments) / n if n else float("nan"),
        },
        {"subset": "all", "metric": "unparsed", "value": float(sum(j["parsed"] is None for j in judgments))},
        {"subset": "all", "metric": "n", "value": float(n)},
    ]
    return rows, judgments
