"""Judges behind one interface, for benchmarks (rubric scores) and for the online-training annotator
(pairwise preferences):

    judge = make_judge(spec, cache_path)            # spec: a config ``judges:`` entry
    verdicts = judge.compare([PairRequest(...)])     # Verdict.preferred: 0, 1 or None (+ status, reason)
    ratings = judge.rate([RateRequest(...)])         # Rating.score or None (+ status, reason, details)
    summarize(verdicts)                              # judged / ties / unparsed / failed / cached counts

Backends (``spec["backend"]``):

* ``openai`` - any OpenAI-compatible endpoint; ``model_env``, ``base_url_env`` and ``api_key_env`` name the
  environment variables holding the model, base URL and key;
* ``hf``     - a local Hugging Face vision-language model (``model``: directory or Hub id);
* the backends of ``mmalign.registry.JUDGE_BACKENDS``: ``exact``, the synthetic world's exact judge
  (``error_rate`` and ``seed`` emulate a weaker annotator).

Every judgment carries the judge id, the hash of its prompt and the raw text; raw text is cached on
(judge id, prompt hash) in ``cache_path`` (SQLite), so a rerun never pays twice.
"""

from __future__ import annotations

from pathlib import Path

from mmalign import registry

from .base import (
    FAILED,
    OK,
    TIE,
    UNPARSED,
    Judge,
    JudgeCallError,
    PairRequest,
    RateRequest,
    Rating,
    Rendered,
    Verdict,
    prompt_hash,
    summarize,
)
from .cache import JudgmentCache

# Settings each backend takes besides ``backend``, with their defaults (the schema's ``judge`` definition
# validates the same keys); a registered backend's module declares its own as ``SETTINGS``.
DEFAULTS = {
    "openai": {
        "model_env": "MMALIGN_JUDGE_MODEL",
        "base_url_env": "MMALIGN_JUDGE_BASE_URL",
        "api_key_env": "MMALIGN_JUDGE_API_KEY",
        "timeout_s": 60.0,
        "max_retries": 4,
        "backoff_s": 1.0,
        "max_backoff_s": 30.0,
        "max_tokens": 512,
        "temperature": 0.0,
        "concurrency": 4,
    },
    "hf": {"model": None, "download": None, "max_new_tokens": 256, "batch_size": 8},
}


# Settings every backend takes: how often an unparsed answer is asked again on later runs, and the failure budget
# of one judged benchmark job or online training run (a larger share of failed calls or unparsed answers fails
# the job, naming the judge and the first errors, and publishes nothing).
COMMON = {"max_asks": 3, "max_failed_share": 0.05, "max_unparsed_share": 0.2}

BACKENDS = (*DEFAULTS, *registry.JUDGE_BACKENDS)


def backend_defaults(backend: str) -> dict:
    if backend in DEFAULTS:
        return {**COMMON, **DEFAULTS[backend]}
    if backend in registry.JUDGE_BACKENDS:
        return {**COMMON, **registry.load(registry.JUDGE_BACKENDS[backend]).SETTINGS}
    raise ValueError(f"judge backend {backend!r} unknown; known: {list(BACKENDS)}")


def settings(spec: dict) -> dict:
    """A judge spec with its backend's defaults filled in; unknown keys are an error naming the key."""
    backend = spec.get("backend")
    defaults = backend_defaults(backend)
    unknown = sorted(set(spec) - set(defaults) - {"backend"})
    if unknown:
        raise ValueError(f"judge backend {backend!r}: unknown setting(s) {unknown}")
    return {**defaults, **spec}


def make_judge(spec: dict, cache_path: str | Path | None = None, model_dir: str | Path | None = None) -> Judge:
    """A judge from a config entry. ``model_dir`` (hf backend) overrides ``spec['model']``: the directory the
    download rule made for ``spec['download']``."""
    s = settings(spec)
    judge = _make(s, JudgmentCache(cache_path) if cache_path else None, model_dir)
    judge.settings = s  # its failure budget, read by check_budget's callers
    judge.max_asks = s["max_asks"]  # a setting of every backend, applied here once
    return judge


def _make(s: dict, cache, model_dir) -> Judge:
    if s["backend"] in registry.JUDGE_BACKENDS:
        return registry.load(registry.JUDGE_BACKENDS[s["backend"]]).make_judge(s, cache)
    if s["backend"] == "openai":
        from .openai_backend import OpenAIJudge

        return OpenAIJudge(
            s["model_env"],
            s["base_url_env"],
            s["api_key_env"],
            cache=cache,
            timeout_s=s["timeout_s"],
            max_retries=s["max_retries"],
            backoff_s=s["backoff_s"],
            max_backoff_s=s["max_backoff_s"],
            max_tokens=s["max_tokens"],
            temperature=s["temperature"],
            concurrency=s["concurrency"],
        )
    from .hf import HFJudge

    model = model_dir or s["model"]
    if not model:
        raise ValueError("judge backend 'hf' needs 'model' (a directory or Hub id)")
    return HFJudge(model, cache=cache, max_new_tokens=s["max_new_tokens"], batch_size=s["batch_size"])


class JudgeBudgetError(RuntimeError):
    """More of a job's judge calls failed, or more answers were unparsed, than the judge's budget allows."""


def check_budget(name: str, spec: dict, records: list[dict], what: str) -> None:
    """Fail when the share of failed calls or unparsed answers among ``records`` (judgment records with
    ``status`` and ``reason``) exceeds the judge's ``max_failed_share`` / ``max_unparsed_share``."""
    s = settings(spec)
    n = len(records)
    failed = [r for r in records if r["status"] == FAILED]
    unparsed = [r for r in records if r["status"] == UNPARSED]
    over = []
    if n and len(failed) / n > s["max_failed_share"]:
        over.append(f"{len(failed)} of {n} calls failed (budget {s['max_failed_share']:.0%})")
    if n and len(unparsed) / n > s["max_unparsed_share"]:
        over.append(f"{len(unparsed)} of {n} answers unparsed (budget {s['max_unparsed_share']:.0%})")
    if over:
        first = sorted({r["reason"] for r in failed + unparsed})[:3]
        raise JudgeBudgetError(
            f"judge {name!r} ({what}): {'; '.join(over)}; nothing is published, a rerun asks again only what "
            f"failed. First errors: {first}"
        )


__all__ = [
    "BACKENDS",
    "COMMON",
    "JudgeBudgetError",
    "check_budget",
    "DEFAULTS",
    "backend_defaults",
    "FAILED",
    "OK",
    "TIE",
    "UNPARSED",
    "Judge",
    "JudgeCallError",
    "JudgmentCache",
    "PairRequest",
    "Rating",
    "RateRequest",
    "Rendered",
    "Verdict",
    "make_judge",
    "prompt_hash",
    "settings",
    "summarize",
]
