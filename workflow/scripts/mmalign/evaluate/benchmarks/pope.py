"""POPE (Li et al. 2023): yes/no object-existence questions in three negative-sampling splits (random, popular,
adversarial); the paper's POPE column. Items: ``mmalign.evaluate.pope_snapshot`` (lmms-eval's ``lmms-lab/POPE``) or
a registered source (the synthetic world's analog: ``mmalign.synthetic.benchmarks.pope``).

Parse rule (ours, pinned): lower-case the answer, take its first word (letters only); "yes" and
"no" are answers, anything else is *unparsed*: counted in ``unparsed`` and scored as wrong (never a
positive). This differs from lmms-eval (exact match of the whole answer to "yes"/"no") and from
LLaVA's eval_pope.py (anything without "no"/"not" counts as yes); see docs/benchmarks-and-judges.md.
``yes_ratio`` is the share of *predicted* yes, as in LLaVA's script (lmms-eval reports the
ground-truth ratio instead).
"""

from __future__ import annotations

import re

SPLITS = ["random", "popular", "adversarial"]
# lmms-eval's POPE prompt suffix; a source may set its own (the synthetic world's language has no such sentence)
DEFAULTS = {"prompt_suffix": "Answer the question using a single word or phrase.", "max_new_tokens": 8}
JUDGED = False


def prompt(item: dict, suffix: str) -> str:
    return f"{item['question']} {suffix}".strip()


def parse_answer(text: str) -> str | None:
    """'yes' / 'no' from the first word of the answer, else None (unparsed)."""
    m = re.match(r"\W*([a-z]+)", text.lower())
    word = m.group(1) if m else ""
    return word if word in ("yes", "no") else None


def answer_complete(text: str) -> bool:
    """Whether ``parse_answer`` of any continuation of ``text`` is already decided: the first word has ended (a
    non-letter follows it). Generation stops there (mmalign.models.generate): the later tokens are never read."""
    return re.match(r"\W*[a-z]+[^a-z]", text.lower()) is not None


def split_metrics(truths: list[str], preds: list[str | None]) -> dict[str, float]:
    n = len(truths)
    tp = sum(t == "yes" and p == "yes" for t, p in zip(truths, preds))
    fp = sum(t == "no" and p == "yes" for t, p in zip(truths, preds))
    fn = sum(t == "yes" and p != "yes" for t, p in zip(truths, preds))
    correct = sum(t == p for t, p in zip(truths, preds))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": correct / n if n else float("nan"),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "yes_ratio": sum(p == "yes" for p in preds) / n if n else float("nan"),
        "unparsed": float(sum(p is None for p in preds)),
        "n": float(n),
    }


def score(items: list[dict], predictions: list[str]) -> tuple[list[dict], list[dict]]:
    """Per-split metrics, plus subset 'all' = the mean over splits (the table's POPE column)."""
    parsed = [parse_answer(p) for p in predictions]
    judgments = [
        {"id": it["id"], "subset": it["subset"], "truth": it["answer"], "parsed": pr, "correct": pr == it["answer"]}
        for it, pr in zip(items, parsed)
    ]
    rows = []
    per_split = {}
    for split in sorted({it["subset"] for it in items}, key=lambda s: SPLITS.index(s) if s in SPLITS else 99):
        idx = [i for i, it in enumerate(items) if it["subset"] == split]
        per_split[split] = split_metrics([items[i]["answer"] for i in idx], [parsed[i] for i in idx])
        rows += [{"subset": split, "metric": k, "value": v} for k, v in per_split[split].items()]
    for metric in ("accuracy", "precision", "recall", "f1", "yes_ratio"):
        rows.append(
            {"subset": "all", "metric": metric, "value": sum(m[metric] for m in per_split.values()) / len(per_split)}
        )
    rows.append({"subset": "all", "metric": "unparsed", "value": float(sum(p is None for p in parsed))})
    return rows, judgments
