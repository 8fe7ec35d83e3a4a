"""Judge prompts and the rules that read a verdict or a score out of a judge's free text.

Each template follows the structure and scale of the standard one; the wording is ours (paraphrased), so the
prompt hash stored with every judgment says exactly which text was asked. To reproduce published numbers
with the original wording, replace a template here: the hash changes, so no cached judgment is reused.

* PAIRWISE      - the paper's Table 14 annotator (Online-DPO): which of two responses is better.
* MMHAL         - MMHal-Bench's 0-6 rubric (LLaVA-RLHF ``eval_gpt_mmhal.py``), text-only or with the image.
* LLAVAW        - LLaVA-Bench-in-the-Wild's relative review: the reference answer (assistant 1) and the
                  response (assistant 2) each get 1-10; the benchmark score is 100 * sum(2) / sum(1).
* MMVET         - MM-Vet's grader: a 0.0-1.0 correctness of the prediction against the ground truth.

Parse rules never guess: text with no verdict, two contradicting verdicts, or a score off the scale is
``None`` with a reason, and the caller counts it.
"""

from __future__ import annotations

import re

PAIRWISE = """You are an expert annotator of answers about images. Your most important goal is to choose the \
response with less hallucination, and everything you decide must be based on the image.

You are given an image, a question about it and two responses. For practical questions a helpful answer is \
concise, without irrelevant questions or comments. Rate as better the response that has less hallucination \
and gives more helpful information about the image. Less hallucination means that objects and their \
attributes (such as colour) and their relationships are described accurately. If something in the image is \
ambiguous, the better response avoids details that are not clearly visible.

Question: {prompt}

Response 1: {response_1}

Response 2: {response_2}

Say whether Response 1 or Response 2 is better, then explain why. Start your answer with exactly \
"Response 1 is better" or "Response 2 is better"."""

MMHAL_SCALE = """6, very informative with good analysis or reasoning, no hallucination
5, very informative, no hallucination
4, somewhat informative, no hallucination
3, not informative, no hallucination
2, very informative, with hallucination
1, somewhat informative, with hallucination
0, not informative, with hallucination"""

MMHAL = """Act as an impartial and objective judge of the response a large multimodal model (LMM) gave to a \
user question about an image. Judge mainly whether the response is informative and whether it contains \
hallucination. Hallucination here means information that is not present in or implied by the image: a false \
claim about an object, an attribute, a count, a position, an action or any other detail not grounded in \
the image.

{seeing} You are given the image contents (object categories), the question, a standard human-generated \
answer and the LMM response. Compare the response with the standard answer and the image contents; a \
response that adds details not in the standard answer is not wrong for that alone, but a detail that \
contradicts the image contents or the standard answer is a hallucination.

Rate the response on this scale:
{scale}

Image contents: {tags}

Question: {question}

Standard human-generated answer: {reference}

LMM response to evaluate: {response}

Explain your judgment briefly, then give the rating on the last line in the form "Rating: <0-6>"."""

MMHAL_TEXT_ONLY = "You cannot see the image."
MMHAL_WITH_IMAGE = "You are shown the image itself; use it as the final authority."

LLAVAW_SYSTEM = "You are a helpful and precise assistant for checking the quality of the answer."
LLAVAW = """[Context]
{context}

[Question]
{question}

[Assistant 1]
{reference}

[End of Assistant 1]

[Assistant 2]
{response}

[End of Assistant 2]

[System]
We would like your feedback on the two AI assistants' answers to the question above, which is about an \
image described by the context. Rate the helpfulness, relevance, accuracy and level of detail of each answer. \
Each assistant gets an overall score from 1 to 10; a higher score means a better answer.
First output one line with only the two scores, for Assistant 1 and Assistant 2 in that order, separated by a \
space. From the next line on, explain your evaluation, avoiding any bias from the order in which the answers \
were presented."""

MMVET = """Compare the ground truth with the prediction of an AI model and give the prediction a correctness \
score. In the ground truth, <AND> means the prediction is fully right only when every element is in it, and \
<OR> means it is fully right when any one element is in it. The correctness score is one of 0.0 (totally \
wrong), 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9 or 1.0 (totally right). Complete only the last score.

Question | Ground truth | Prediction | Correctness
--- | --- | --- | ---
What colour is the bus? | red | The bus is red. | 1.0
What colour is the bus? | red | The bus is blue. | 0.0
How many apples are on the plate? | 3 | There are four apples. | 0.0
Which two animals are in the photo? | cat <AND> dog | a cat and a rabbit | 0.5
Which animal could be in the photo? | cat <OR> dog | it is a dog | 1.0
What is written on the sign? | stop | The sign says "stop" in white letters on a red octagon. | 1.0
{question} | {reference} | {response} | """

RUBRICS = ("mmhal", "llavaw", "mmvet")


def render_pairwise(prompt: str, responses: tuple[str, str]) -> str:
    return PAIRWISE.format(prompt=prompt, response_1=responses[0], response_2=responses[1])


def render_rubric(
    rubric: str,
    question: str,
    response: str,
    reference: str,
    tags: tuple[str, ...] = (),
    context: str = "",
    with_image: bool = False,
) -> tuple[str | None, str]:
    """(system message or None, user message) for one rubric."""
    if rubric == "mmhal":
        seeing = MMHAL_WITH_IMAGE if with_image else MMHAL_TEXT_ONLY
        return None, MMHAL.format(
            seeing=seeing,
            scale=MMHAL_SCALE,
            tags=", ".join(tags) or "(none given)",
            question=question,
            reference=reference,
            response=response,
        )
    if rubric == "llavaw":
        return LLAVAW_SYSTEM, LLAVAW.format(
            context=context or "(none)", question=question, reference=reference, response=response
        )
    if rubric == "mmvet":
        flat = [" ".join(str(x).split()) for x in (question, reference, response)]  # one table row
        return None, MMVET.format(question=flat[0], reference=flat[1], response=flat[2])
    raise ValueError(f"unknown rubric {rubric!r}; known: {list(RUBRICS)}")


# ----------------------------------------------------------------------------------------------- parsing

_BETTER = re.compile(
    r"\bresponse\s*\(?([12])\)?\s*(?:is|was)\s+(?:the\s+|clearly\s+|slightly\s+|much\s+)?better\b", re.I
)
_BETTER_IS = re.compile(r"\bbetter\s+(?:response|answer|one)\s+is\s+response\s*\(?([12])\)?", re.I)


def parse_pairwise(text: str) -> tuple[int | None, str]:
    """(0 or 1, reason) from "Response 1 is better" / "the better response is Response 2"; the first stated
    verdict counts, but a text that states both verdicts is ambiguous and unparsed."""
    found = [(m.start(), int(m.group(1))) for rx in (_BETTER, _BETTER_IS) for m in rx.finditer(text or "")]
    if not found:
        return None, "no 'Response N is better' verdict in the judge's text"
    if len({n for _, n in found}) > 1:
        return None, "the judge's text states both verdicts"
    return min(found)[1] - 1, "ok"


_RATING = re.compile(r"rating\s*[:=]?\s*\**\s*(-?\d+(?:\.\d+)?)", re.I)


def parse_mmhal(text: str) -> tuple[float | None, str]:
    """The last "Rating: N" in the text, N an integer 0..6 (LLaVA-RLHF's script silently scores a missing
    rating as 0; we do not)."""
    found = _RATING.findall(text or "")
    if not found:
        return None, "no 'Rating: N' in the judge's text"
    value = float(found[-1])
    if value not in range(0, 7):
        return None, f"rating {found[-1]} is not an integer on the 0-6 scale"
    return value, "ok"


_TWO_SCORES = re.compile(r"^\s*(\d+(?:\.\d+)?)[\s,/]+(\d+(?:\.\d+)?)\s*$")


def parse_llavaw(text: str) -> tuple[tuple[float, float] | None, str]:
    """(reference score, response score) from the first non-empty line, each 1..10 (LLaVA's script maps a bad
    line to -1, -1 and skips it silently; we count it)."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return None, "empty judge text"
    m = _TWO_SCORES.match(lines[0].replace("*", ""))
    if not m:
        return None, f"first line is not two scores: {lines[0][:60]!r}"
    scores = float(m.group(1)), float(m.group(2))
    if not all(1 <= s <= 10 for s in scores):
        return None, f"scores {scores} are outside 1-10"
    return scores, "ok"


_CORRECTNESS = re.compile(r"(?<![\d.])(0(?:\.\d+)?|1(?:\.0+)?)(?![\d.])")


def parse_mmvet(text: str) -> tuple[float | None, str]:
    """The first number in [0, 1] in the grader's completion (MM-Vet's script retries and then scores 0.0;
    we count it as unparsed)."""
    m = _CORRECTNESS.search((text or "").strip())
    if not m:
        return None, "no correctness score in [0, 1] in the grader's text"
    return float(m.group(1)), "ok"
