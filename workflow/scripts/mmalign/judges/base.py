"""The one judge interface: requests in, verdicts or ratings out, every raw judgment kept.

A backend only says how a request becomes a prompt (``render_*``), how a batch of prompts becomes raw text
(``complete``) and how raw text becomes a verdict or a score (``parse_*``). The base class does the rest the
same way for every backend: prompt hashing, the persistent cache (a rerun never pays twice), and explicit
failures. A judgment that failed or could not be parsed carries ``preferred``/``score`` = None and a
``status`` + ``reason``; callers count those, they never guess a verdict.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .cache import CachedAnswer, JudgmentCache

log = logging.getLogger(__name__)

# status values of a judgment
OK, TIE, UNPARSED, FAILED = "ok", "tie", "unparsed", "failed"
DEFAULT_MAX_ASKS = 3  # an unparsed answer is asked again on later runs until the judge was asked this often


@dataclass(frozen=True)
class PairRequest:
    """Which of two responses to a prompt (about an image) is better."""

    id: str
    prompt: str
    responses: tuple[str, str]
    image: str | None = None  # path; LLM backends show it to the judge
    scene: dict | None = None  # the world's scene (a Scene or Scene.to_dict()); the exact judge reads it
    # A known good answer (the pair set's chosen one), for judges that can use it: the exact judge counts how
    # much of it a response states (coverage), so restating the question ("the square.") is not a good answer.
    # The LLM backends show the paper's annotator prompt (Table 14), which has no reference.
    reference: str | None = None


@dataclass(frozen=True)
class RateRequest:
    """A score for one response under a rubric (``prompts.RUBRICS``: mmhal, llavaw, mmvet).

    What the judge sees is exactly what the request holds: ``image`` (LLM backends) or ``scene`` (the exact
    judge) only when the benchmark lets the judge see the picture (MMHal-Bench-V), else the text-only reading
    from ``reference`` and ``tags`` (MMHal-Bench's image-content tags, LLaVA-W's context caption).
    """

    id: str
    rubric: str
    question: str
    response: str
    reference: str = ""
    image: str | None = None
    scene: dict | None = None
    tags: tuple[str, ...] = ()
    context: str = ""  # LLaVA-W: the caption the text-only judge reads instead of the image


@dataclass(frozen=True)
class Rendered:
    """A request as the backend sees it: the prompt text, an optional system message and image path."""

    text: str
    image: str | None = None
    system: str | None = None


@dataclass
class Judgment:
    id: str
    status: str  # ok | tie | unparsed | failed
    reason: str
    raw: str | None
    judge_id: str
    prompt_hash: str
    cached: bool

    @property
    def failed(self) -> bool:
        return self.status in (UNPARSED, FAILED)

    def to_record(self) -> dict:
        return asdict(self)


@dataclass
class Verdict(Judgment):
    preferred: int | None = None  # 0 = responses[0], 1 = responses[1]; None = tie or no verdict


@dataclass
class Rating(Judgment):
    score: float | None = None
    details: dict = field(default_factory=dict)  # e.g. LLaVA-W's score of the reference answer


def file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def prompt_hash(rendered: Rendered) -> str:
    """Hash of everything the judge is shown: prompt text, system message, the image's bytes (not its path)."""
    digest = hashlib.sha256(rendered.text.encode())
    if rendered.system:
        digest.update(b"\0system:" + rendered.system.encode())
    if rendered.image:
        digest.update(b"\0image:" + file_digest(rendered.image).encode())
    return digest.hexdigest()


class JudgeCallError(Exception):
    """A judge call that produced no text (network, server, timeout, prompt too long)."""


def report_each(results: list, on_answer) -> list:
    """For backends that answer a whole batch at once (local models): report each answer afterwards."""
    if on_answer is not None:
        for i, out in enumerate(results):
            on_answer(i, out)
    return results


class Judge:
    """Base class of every backend. Subclasses set ``judge_id`` and implement the four hooks."""

    judge_id: str = "judge"

    def __init__(self, cache: JudgmentCache | None = None, max_asks: int = DEFAULT_MAX_ASKS):
        self.cache = cache
        self.max_asks = max_asks

    @property
    def cache_key(self) -> str:
        """What the cache files verdicts under: the judge id, plus whatever else changes its answers (a backend
        behind an endpoint adds the endpoint and decoding settings)."""
        return self.judge_id

    # --- hooks --------------------------------------------------------------------------------------------
    def render_pair(self, request: PairRequest) -> Rendered:
        raise NotImplementedError

    def render_rating(self, request: RateRequest) -> Rendered:
        raise NotImplementedError

    def complete(self, prompts: list[Rendered], on_answer=None) -> list[str | JudgeCallError]:
        """Raw judge text per prompt, or the error that prevented it (never raised for one bad item).
        ``on_answer(index, text_or_error)`` is called as each answer arrives (the cache stores it then)."""
        raise NotImplementedError

    def parse_pair(self, raw: str, request: PairRequest, phash: str) -> tuple[int | None, str, str]:
        """(preferred, status, reason)"""
        raise NotImplementedError

    def parse_rating(self, raw: str, request: RateRequest) -> tuple[float | None, dict, str, str]:
        """(score, details, status, reason)"""
        raise NotImplementedError

    # --- the interface ------------------------------------------------------------------------------------
    def compare(self, requests: list[PairRequest]) -> list[Verdict]:
        rendered = [self.render_pair(r) for r in requests]
        verdicts = []
        for request, (phash, raw, error, cached) in zip(requests, self._raw_judgments(rendered)):
            if error is not None:
                verdicts.append(Verdict(request.id, FAILED, error, None, self.judge_id, phash, cached))
                continue
            preferred, status, reason = self.parse_pair(raw, request, phash)
            verdicts.append(Verdict(request.id, status, reason, raw, self.judge_id, phash, cached, preferred))
        self._record_statuses(verdicts)
        return verdicts

    def rate(self, requests: list[RateRequest]) -> list[Rating]:
        rendered = [self.render_rating(r) for r in requests]
        ratings = []
        for request, (phash, raw, error, cached) in zip(requests, self._raw_judgments(rendered)):
            if error is not None:
                ratings.append(Rating(request.id, FAILED, error, None, self.judge_id, phash, cached))
                continue
            score, details, status, reason = self.parse_rating(raw, request)
            ratings.append(Rating(request.id, status, reason, raw, self.judge_id, phash, cached, score, details))
        self._record_statuses(ratings)
        return ratings

    def _record_statuses(self, judgments: list[Judgment]) -> None:
        if self.cache is not None:
            answered = {j.prompt_hash: j.status for j in judgments if j.status != FAILED}
            self.cache.set_status(self.cache_key, sorted(answered.items()))

    def _reusable(self, cached: CachedAnswer | None) -> bool:
        """A cached answer is used unless it did not parse and the judge may still be asked again."""
        return cached is not None and (cached.status != UNPARSED or cached.asks >= self.max_asks)

    def _raw_judgments(self, rendered: list[Rendered]) -> list[tuple[str, str | None, str | None, bool]]:
        """(prompt hash, raw text, error, cached) per prompt: cache hits first, one backend call for the rest.
        Each answer is cached as it arrives, whether or not it parses; an unparsed one is asked again on a later
        run until the judge was asked ``max_asks`` times. Errors are not cached, so a rerun retries them."""
        hashes = [prompt_hash(r) for r in rendered]
        stored = self.cache.get_many(self.cache_key, hashes) if self.cache is not None else {}
        found = {h: c.raw for h, c in stored.items() if self._reusable(c)}
        todo, seen = [], set()
        for i, h in enumerate(hashes):  # one call per distinct prompt
            if h not in found and h not in seen:
                todo.append(i)
                seen.add(h)
        results: dict[str, tuple[str | None, str | None]] = {}

        def on_answer(j: int, out) -> None:
            i = todo[j]
            if isinstance(out, JudgeCallError):
                results[hashes[i]] = (None, str(out) or type(out).__name__)
                return
            results[hashes[i]] = (out, None)
            if self.cache is not None:
                asks = stored[hashes[i]].asks + 1 if hashes[i] in stored else 1
                self.cache.put(self.cache_key, hashes[i], out, rendered[i].text, asks)

        if todo:
            self.complete([rendered[i] for i in todo], on_answer=on_answer)
        out = []
        for h in hashes:
            if h in found:
                out.append((h, found[h], None, True))
            else:
                raw, error = results.get(h, (None, "no answer (the backend returned none for this prompt)"))
                out.append((h, raw, error, False))
        n_failed = sum(1 for _, _, e, _ in out if e is not None)
        log.info(
            "%s: %d judgments (%d cached, %d asked, %d failed)",
            self.judge_id,
            len(out),
            len(found),
            len(todo),
            n_failed,
        )
        return out


def summarize(judgments: list[Judgment]) -> dict[str, float]:
    """Counts to report beside a judged metric: judged, ties, unparsed, failed, cache hits."""
    status = Counter(j.status for j in judgments)
    return {
        "judged": float(status[OK] + status[TIE]),
        "ties": float(status[TIE]),
        "judge_unparsed": float(status[UNPARSED]),
        "judge_failed": float(status[FAILED]),
        "judge_cached": float(sum(j.cached for j in judgments)),
    }
