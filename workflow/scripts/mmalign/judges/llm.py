"""What every language-model judge shares: prompts from ``prompts``, verdicts read by its parse rules."""

from __future__ import annotations

from . import prompts
from .base import OK, UNPARSED, Judge, PairRequest, RateRequest, Rendered


class LLMJudge(Judge):
    """A judge that reads a prompt (and the image, where the request has one) and answers in free text."""

    def render_pair(self, request: PairRequest) -> Rendered:
        return Rendered(prompts.render_pairwise(request.prompt, request.responses), image=request.image)

    def render_rating(self, request: RateRequest) -> Rendered:
        system, text = prompts.render_rubric(
            request.rubric,
            request.question,
            request.response,
            request.reference,
            request.tags,
            request.context,
            with_image=request.image is not None,
        )
        return Rendered(text, image=request.image, system=system)

    def parse_pair(self, raw: str, request: PairRequest, phash: str) -> tuple[int | None, str, str]:
        preferred, reason = prompts.parse_pairwise(raw)
        return preferred, OK if preferred is not None else UNPARSED, reason

    def parse_rating(self, raw: str, request: RateRequest) -> tuple[float | None, dict, str, str]:
        if request.rubric == "llavaw":
            scores, reason = prompts.parse_llavaw(raw)
            if scores is None:
                return None, {}, UNPARSED, reason
            return scores[1], {"reference_score": scores[0]}, OK, reason
        parse = {"mmhal": prompts.parse_mmhal, "mmvet": prompts.parse_mmvet}[request.rubric]
        score, reason = parse(raw)
        return score, {}, OK if score is not None else UNPARSED, reason
