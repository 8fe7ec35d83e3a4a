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


BACKENDS = (*DEFAULTS, *registry.JUDGE_BACKENDS)


def backend_defaults(backend: str) -> dict:
    if backend in DEFAULTS:
        return DEFAULTS[backend]
    if backend in registry.JUDGE_BACKENDS:
        return registry.load(registry.JUDGE_BACKENDS[backend]).SETTINGS
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
    cache = JudgmentCache(cache_path) if cache_path else None
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


__all__ = [
    "BACKENDS",
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
