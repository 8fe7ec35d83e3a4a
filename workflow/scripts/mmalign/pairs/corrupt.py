"""Corrupters for the corrupted-VLFeedback family (paper §5.3, Tables 4-5): keep a pair's prompt and chosen
response and replace the rejected one by a *realistic* corruption of the chosen response.

* ``LLMCorrupter`` (``corrupter: {kind: llm}``, the paper study): an LLM behind any OpenAI-compatible endpoint
  (``mmalign.openai_client``), prompted with the paper's Table 13 instructions and its two few-shot examples.
  Failed calls are retried with exponential backoff and, once retries are exhausted, counted (never silently
  replaced).
* Other kinds are registered in ``mmalign.registry`` (``kind: prior``: the synthetic world's own hallucination
  along its priors, ``mmalign.synthetic.prior_corrupter``).

Every corrupter returns ``(corrupted text, None)`` or ``(None, reason)``; the reason goes to the manifest.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from mmalign import registry
from mmalign.openai_client import openai_client

log = logging.getLogger(__name__)

# Table 13 of the paper, reconstructed from its description (the converted paper text we have garbles the exact
# wording; the paper's §5.3): the instructions, two few-shot examples (a book cover read by OCR, a driving
# assistant's multiple-choice answer), then the item to corrupt.
TABLE13_SYSTEM = (
    "You corrupt answers of a vision-language assistant for a hallucination study. You get a prompt about an image "
    "and the assistant's correct response. Rewrite the response so that it contains realistic hallucinations: add "
    "objects, persons or animals that are not in the image, or change positions, counts, attributes (such as "
    "colour or shape) or spatial relations. The corrupted response must still read as a plausible answer to the "
    "prompt, in the same style and length, so that someone who sees only the response cannot tell that it is "
    "wrong. Do not mark or hint at the errors. Output only the corrupted response."
)
TABLE13_EXAMPLES = [
    (
        "What is the title of this book, and who wrote it?",
        'The book is titled "The Silent Orchard" and it was written by Maria Ellison.',
        'The book is titled "The Silent Harbor" and it was written by Marian Ellis.',
    ),
    (
        "You are a driving assistant. What should the driver do next? A. Slow down B. Turn left C. Stop the car "
        "D. Turn right E. Keep driving",
        "E. Keep driving. The traffic light on your side is green and the crossing ahead is clear of pedestrians.",
        "C. Stop the car. The traffic light on your side is red and a pedestrian is stepping onto the crossing.",
    ),
]
TABLE13_TEMPLATE = "prompt: {prompt}\nresponse: {response}\ncorrupted response:"


def table13_messages(prompt: str, response: str) -> list[dict]:
    """Chat messages for one corruption: the instructions, the two worked examples, then the item."""
    messages = [{"role": "system", "content": TABLE13_SYSTEM}]
    for ex_prompt, ex_response, ex_corrupted in TABLE13_EXAMPLES:
        messages.append({"role": "user", "content": TABLE13_TEMPLATE.format(prompt=ex_prompt, response=ex_response)})
        messages.append({"role": "assistant", "content": ex_corrupted})
    messages.append({"role": "user", "content": TABLE13_TEMPLATE.format(prompt=prompt, response=response)})
    return messages


@dataclass
class LLMCorrupterSettings:
    """Config ``pairsets.<name>.corrupter`` with ``kind: llm``: the names of the environment variables to read."""

    model_env: str = "CORRUPTER_MODEL"
    base_url_env: str = "CORRUPTER_BASE_URL"
    api_key_env: str = "CORRUPTER_API_KEY"
    temperature: float = 0.7
    max_tokens: int = 512
    max_retries: int = 4
    backoff_s: float = 2.0  # first wait; doubled after every failed try
    timeout_s: float = 120.0
    concurrency: int = 8


class LLMCorrupter:
    kind = "llm"

    def __init__(self, settings: LLMCorrupterSettings, environ=None):
        self.settings = settings
        self.client, self.model = openai_client(
            settings.model_env,
            settings.base_url_env,
            settings.api_key_env,
            timeout_s=settings.timeout_s,
            who="LLM corrupter",
            environ=environ,
        )
        self.calls = self.failed_tries = 0

    def corrupt(self, prompt: str, response: str, **_) -> tuple[str | None, str | None]:
        s = self.settings
        wait, error = s.backoff_s, None
        for attempt in range(s.max_retries + 1):
            self.calls += 1
            try:
                out = self.client.chat.completions.create(
                    model=self.model,
                    messages=table13_messages(prompt, response),
                    temperature=s.temperature,
                    max_tokens=s.max_tokens,
                )
                text = (out.choices[0].message.content or "").strip()
            except Exception as err:  # openai raises APIError subclasses, httpx transport errors, ...
                self.failed_tries += 1
                error = type(err).__name__
                log.warning("corrupter call failed (%s), try %d of %d", error, attempt + 1, s.max_retries + 1)
                if attempt < s.max_retries:
                    time.sleep(wait)
                    wait *= 2
                continue
            if not text:
                return None, "llm_empty"
            if text == response.strip():
                return None, "llm_unchanged"
            return text, None
        return None, "llm_failed"


def make_corrupter(spec: dict, seed: int, scenes_path=None, world_config: dict | None = None):
    """The corrupter a pair-set spec names (``corrupter: {kind: llm, ...}`` or a registered kind)."""
    spec = dict(spec)
    kind = spec.pop("kind")
    if kind == "llm":
        return LLMCorrupter(LLMCorrupterSettings(**spec))
    if kind in registry.CORRUPTER_KINDS:
        return registry.load(registry.CORRUPTER_KINDS[kind]).make_corrupter(spec, seed, scenes_path, world_config)
    raise ValueError(f"unknown corrupter kind {kind!r}; known: {['llm', *registry.CORRUPTER_KINDS]}")
