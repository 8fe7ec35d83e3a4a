"""One way to reach an OpenAI-compatible chat endpoint (OpenAI, vLLM, SGLang, ``transformers serve``, ...), for the
judges and the LLM corrupter alike.

Model, base URL and key come from environment variables whose *names* are config keys (``model_env``,
``base_url_env``, ``api_key_env``), so no secret is ever in a config file, a log or a result. The client's own
retries are off: callers retry with their own bounded, logged and counted backoff, so a failure is never hidden.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def from_environment(environ: Mapping[str, str], name: str, what: str, who: str, required: bool = True) -> str | None:
    """The value of environment variable ``name``; a clear error naming it when it is required and not set."""
    value = environ.get(name)
    if required and not value:
        raise ValueError(f"{who}: the {what} is read from the environment variable {name}, which is not set")
    return value or None


def openai_client(
    model_env: str,
    base_url_env: str,
    api_key_env: str,
    *,
    timeout_s: float,
    who: str,
    key_required: bool = False,
    environ: Mapping[str, str] | None = None,
):
    """``(client, model name)`` for the endpoint the three environment variables name.

    ``key_required``: a hosted API needs a key; local servers ignore it, and the SDK then gets a placeholder. With
    no base URL the endpoint is OpenAI's own API, so the key is required then too.
    """
    from openai import OpenAI

    env = os.environ if environ is None else environ
    model = from_environment(env, model_env, "model name", who)
    base_url = from_environment(env, base_url_env, "base URL", who, required=False)
    api_key = from_environment(env, api_key_env, "API key", who, required=key_required or base_url is None)
    client = OpenAI(api_key=api_key or "unused", base_url=base_url, timeout=timeout_s, max_retries=0)
    return client, model
