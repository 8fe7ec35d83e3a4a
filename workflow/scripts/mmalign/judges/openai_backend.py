"""A judge behind any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, SGLang, LMDeploy, ...).

Model, base URL and API key come from environment variables whose *names* are config keys, so no secret is
ever in a config file, a log or a result. The client's own retries are off: ours are bounded, exponential,
logged and counted, and a call that still fails becomes a counted failure, never a verdict.
"""

from __future__ import annotations

import base64
import logging
import mimetypes
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .base import JudgeCallError, Rendered
from .llm import LLMJudge

log = logging.getLogger(__name__)


def image_data_url(path: str | Path) -> str:
    mime = mimetypes.guess_type(str(path))[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(Path(path).read_bytes()).decode()}"


def messages_for(rendered: Rendered) -> list[dict]:
    messages = [{"role": "system", "content": rendered.system}] if rendered.system else []
    if rendered.image:
        content = [{"type": "image_url", "image_url": {"url": image_data_url(rendered.image)}},
                   {"type": "text", "text": rendered.text}]
    else:
        content = rendered.text
    messages.append({"role": "user", "content": content})
    return messages


def from_environment(name: str, what: str, required: bool = True) -> str | None:
    value = os.environ.get(name)
    if required and not value:
        raise ValueError(f"OpenAI-compatible judge: the {what} is read from the environment variable {name}, "
                         f"which is not set")
    return value


class OpenAIJudge(LLMJudge):
    def __init__(self, model: str, base_url: str | None, api_key: str | None, *, cache=None, timeout_s: float = 60.0,
                 max_retries: int = 4, backoff_s: float = 1.0, max_backoff_s: float = 30.0, max_tokens: int = 512,
                 temperature: float = 0.0, concurrency: int = 4, seed: int | None = 0):
        from openai import OpenAI

        super().__init__(cache)
        self.model = model
        self.judge_id = f"openai:{model}"
        # The SDK insists on a key; local servers ignore it, so a placeholder is fine when none is set.
        self.client = OpenAI(api_key=api_key or "unused", base_url=base_url, timeout=timeout_s, max_retries=0)
        self.max_retries, self.backoff_s, self.max_backoff_s = max_retries, backoff_s, max_backoff_s
        self.max_tokens, self.temperature, self.concurrency, self.seed = max_tokens, temperature, concurrency, seed
        self.calls = self.retries = 0

    def complete(self, prompts: list[Rendered]) -> list[str | JudgeCallError]:
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            return list(pool.map(self._complete_one, prompts))

    def _complete_one(self, rendered: Rendered) -> str | JudgeCallError:
        import openai

        transient = (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError,
                     openai.InternalServerError, openai.APIResponseValidationError)
        for attempt in range(self.max_retries + 1):
            self.calls += 1
            try:
                response = self.client.chat.completions.create(
                    model=self.model, messages=messages_for(rendered), max_tokens=self.max_tokens,
                    temperature=self.temperature, seed=self.seed)
                return response.choices[0].message.content or ""
            except transient as err:
                if attempt == self.max_retries:
                    return JudgeCallError(f"{type(err).__name__} after {attempt + 1} attempts: {err}")
                self.retries += 1
                wait = min(self.max_backoff_s, self.backoff_s * 2**attempt)
                log.warning("judge call failed (%s), retry %d/%d in %.1fs", type(err).__name__, attempt + 1,
                            self.max_retries, wait)
                time.sleep(wait)
            except openai.APIStatusError as err:  # 4xx: asking again will not help
                return JudgeCallError(f"{type(err).__name__} (HTTP {err.status_code}): {err}")
            except (IndexError, AttributeError) as err:  # a 200 without a usable choice
                return JudgeCallError(f"malformed completion: {err}")
        raise AssertionError("unreachable")
