"""TextVQA (Singh et al. 2019): reading text in images, short answers; the paper's VQAT column.

Metric: standard VQA accuracy against the 10 human answers, min(1, #humans who gave the answer / 3),
averaged over the 10 leave-one-annotator-out subsets (the official EvalAI formula), reported as ``accuracy``
(0-1). Answers and human answers go through the EvalAI normalization (``normalize_vqa``: lower case,
punctuation, number words to digits, articles dropped, contractions). The official script normalizes the
answers only when the humans disagree; lmms-eval (and we) always do.

Parse rule (``Reader``): the whole answer, normalized; an answer that is empty after normalization is *unparsed*
(counted, scored 0). A registered source brings its own reader (the synthetic world's letters:
``mmalign.synthetic.benchmarks.vqat``).
"""

from __future__ import annotations

import re

from .common import prompt  # noqa: F401 (the benchmark's API)

DEFAULTS = {"prompt_suffix": "", "max_new_tokens": 16}
JUDGED = False

# EvalAI's VQA answer processing (the subset of its contraction table that can occur in short answers).
_CONTRACTIONS = {
    "arent": "aren't",
    "cant": "can't",
    "couldnt": "couldn't",
    "didnt": "didn't",
    "doesnt": "doesn't",
    "dont": "don't",
    "hadnt": "hadn't",
    "hasnt": "hasn't",
    "havent": "haven't",
    "hes": "he's",
    "isnt": "isn't",
    "itd": "it'd",
    "itll": "it'll",
    "im": "i'm",
    "ive": "i've",
    "lets": "let's",
    "shes": "she's",
    "shouldnt": "shouldn't",
    "thats": "that's",
    "theres": "there's",
    "theyre": "they're",
    "wasnt": "wasn't",
    "werent": "weren't",
    "whats": "what's",
    "wont": "won't",
    "wouldnt": "wouldn't",
    "youre": "you're",
    "youve": "you've",
}
_NUMBERS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
_ARTICLES = {"a", "an", "the"}
_PUNCT = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]
_PERIOD_STRIP = re.compile(r"(?<!\d)(\.)(?!\d)")
_COMMA_STRIP = re.compile(r"(\d)(,)(\d)")


def normalize_vqa(text: str) -> str:
    text = original = text.replace("\n", " ").replace("\t", " ").strip()
    for p in _PUNCT:  # as EvalAI: the test looks at the original text, the edits accumulate
        if f"{p} " in original or f" {p}" in original or _COMMA_STRIP.search(original):
            text = text.replace(p, "")
        else:
            text = text.replace(p, " ")
    text = _PERIOD_STRIP.sub("", text)
    words = [_NUMBERS.get(w, w) for w in text.lower().split()]
    return " ".join(_CONTRACTIONS.get(w, w) for w in words if w not in _ARTICLES)


def vqa_accuracy(answer: str, humans: list[str]) -> float:
    """mean over leave-one-out subsets of min(1, matches among the other 9 / 3); answers already normalized."""
    if not humans:
        return 0.0
    scores = []
    for i in range(len(humans)):
        others = humans[:i] + humans[i + 1 :]
        scores.append(min(1.0, sum(h == answer for h in others) / 3))
    return sum(scores) / len(scores)


class Reader:
    """The parse rule of TextVQA answers (module docstring)."""

    def answer(self, text: str, item: dict) -> str | None:
        """The parsed answer; None = unparsed."""
        return normalize_vqa(text) or None

    def human_answers(self, item: dict) -> list[str]:
        return [normalize_vqa(a) for a in item["meta"].get("answers") or [item["answer"]]]


READER = Reader()


def score(items: list[dict], predictions: list[str], reader: Reader = READER) -> tuple[list[dict], list[dict]]:
    judgments, total = [], 0.0
    for item, text in zip(items, predictions):
        parsed = reader.answer(text, item)
        accuracy = 0.0 if parsed is None else vqa_accuracy(parsed, reader.human_answers(item))
        total += accuracy
        judgments.append({"id": item["id"], "parsed": parsed, "accuracy": accuracy})
    n = len(items)
    rows = [
        {"subset": "all", "metric": "accuracy", "value": total / n if n else float("nan")},
        {"subset": "all", "metric": "unparsed", "value": float(sum(j["parsed"] is None for j in judgments))},
        {"subset": "all", "metric": "n", "value": float(n)},
    ]
    return rows, judgments
