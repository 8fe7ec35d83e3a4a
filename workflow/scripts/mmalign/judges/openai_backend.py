"""A judge behind any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, SGLang, LMDeploy, ...).

The client comes from ``mmalign.openai_client`` (model, base URL and key from environment variables whose *names*
are config keys). Retries are ours: bounded, exponential, logged and counted, and a call that still fails
becomes a counted failure, never a verdict.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import mimetypes
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from mmalign.openai_client import openai_client

from .base import JudgeCallError, Rendered
from .llm import LLMJudge

log = logging.getLogger(__name__)


def image_data_url(path: str | Path) -> str:
    mime = mimetypes.guess_type(str(path))[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(Path(path).read_bytes()).decode()}"


def messages_for(rendered: Rendered) -> list[dict]:
    messages = [{"role": "system", "content": rendered.system}] if rendered.system else []
    if rendered.image:
        content = [
            {"type": "image_url", "image_url": {"url": image_data_url(rendered.image)}},
            {"type": "text", "text": rendered.text},
        ]
    else:
        content = rendered.text
    messages.append({"role": "user", "content": content})
    return messages


class OpenAIJudge(LLMJudge):
    def __init__(
        self,
        model_env: str,
        base_url_env: str,
        api_key_env: str,
        *,
        cache,
        timeout_s: float,
        max_retries: int,
        backoff_s: float,
        max_backoff_s: float,
        max_tokens: int,
        temperature: float,
        concurrency: int,
        seed: int | None = 0,
        environ=None,
    ):
        """Settings: ``mmalign.judges.DEFAULTS["openai"]`` (``make_judge`` fills them in)."""
        super().__init__(cache)
        self.client, self.model = openai_client(
            model_env, base_url_env, api_key_env, timeout_s=timeout_s, who="OpenAI-compatible judge", environ=environ
        )
        self.judge_id = f"openai:{self.model}"
        self.max_retries, self.backoff_s, self.max_backoff_s = max_retries, backoff_s, max_backoff_s
        self.max_tokens, self.temperature, self.concurrency, self.seed = max_tokens, temperature, concurrency, seed
        self.calls = self.retries = 0

    @property
    def cache_key(self) -> str:
        """The model, the endpoint and the decoding settings (never the key): another endpoint serving a model
        of the same name, or another temperature, does not reuse these verdicts."""
        settings = json.dumps(
            [str(self.client.base_url), self.max_tokens, self.temperature, self.seed], separators=(",", ":")
        )
        return f"{self.judge_id}@{hashlib.sha256(settings.encode()).hexdigest()[:16]}"

    def complete(self, prompts: list[Rendered], on_answer=None) -> list[str | JudgeCallError]:
        """Answers in prompt order; each is reported to ``on_answer`` as soon as it arrives."""
        results: list[str | JudgeCallError | None] = [None] * len(prompts)
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            futures = {pool.submit(self._complete_one, rendered): i for i, rendered in enumerate(prompts)}
            for future in as_completed(futures):
                i = futures[future]
                results[i] = future.result()  # _complete_one never raises
                if on_answer is not None:
                    on_answer(i, results[i])
        return results

    def _complete_one(self, rendered: Rendered) -> str | JudgeCallError:
        import openai

        transient = (
            openai.APIConnectionError,
            openai.APITimeoutError,
            openai.RateLimitError,
            openai.InternalServerError,
            openai.APIResponseValidationError,
        )
        for attempt in range(self.max_retries + 1):
            self.calls += 1
            try:
                response = self.client.chat.completions.create(
                    model=self.model,
                    messages=messages_for(rendered),
                    max_tokens=self.max_tokens,
                    temperature=self.temperature,
                    seed=self.seed,
                )
                return response.choices[0].message.content or ""
            except transient as err:
                if attempt == self.max_retries:
                    return JudgeCallError(f"{type(err).__name__} after {attempt + 1} attempts: {err}")
                self.retries += 1
                wait = min(self.max_backoff_s, self.backoff_s * 2**attempt)
                log.warning(
                    "judge call failed (%s), retry %d/%d in %.1fs",
                    type(err).__name__,
                    attempt + 1,
                    self.max_retries,
                    wait,
                )
                time.sleep(wait)
            except openai.APIStatusError as err:  # 4xx: asking again will not help
                return JudgeCallError(f"{type(err).__name__} (HTTP {err.status_code}): {err}")
            except (IndexError, AttributeError, TypeError) as err:  # a 200 without a usable choice
                return JudgeCallError(f"malformed completion: {type(err).__name__}: {err}")
            except Exception as err:  # anything else of one call (a body that is not JSON, ...) is one failure
                if attempt == self.max_retries:
                    return JudgeCallError(f"{type(err).__name__} after {attempt + 1} attempts: {err}")
                self.retries += 1
                time.sleep(min(self.max_backoff_s, self.backoff_s * 2**attempt))
        raise AssertionError("unreachable")
