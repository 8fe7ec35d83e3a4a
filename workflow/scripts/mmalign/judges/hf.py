"""A local Hugging Face vision-language model as judge (e.g. LLaVA-1.6-34B, the paper's annotator).

Greedy decoding, batched; requests with an image go through the policy generator (``models.generate``),
text-only ones (MMHal's text-only judge) through the same chat template without an image. A prompt that does
not fit the model's context is a counted failure, never truncated: a cut judge prompt would lose the
responses it is asked about.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch
from PIL import Image

from mmalign.models import generate, load_policy

from .base import JudgeCallError, Rendered, report_each
from .llm import LLMJudge

log = logging.getLogger(__name__)


def model_fingerprint(model: str | Path) -> str:
    """A short id of a local model directory's weights (config + size and edges of each weight file), so a
    retrained model in the same place never reuses another's cached judgments; a Hub id is its own id."""
    path = Path(model)
    if not path.is_dir():
        return str(model)
    digest = hashlib.sha256()
    for file in sorted(path.glob("*.json")) + sorted(path.glob("*.safetensors")):
        data = file.read_bytes() if file.suffix == ".json" else None
        if data is None:
            size = file.stat().st_size
            with open(file, "rb") as fh:
                data = fh.read(1 << 20) + str(size).encode()
                fh.seek(max(0, size - (1 << 20)))
                data += fh.read()
        digest.update(file.name.encode() + data)
    return f"{path.name}@{digest.hexdigest()[:12]}"


class HFJudge(LLMJudge):
    def __init__(self, model: str | Path, *, cache, max_new_tokens: int, batch_size: int):
        """Settings: ``mmalign.judges.DEFAULTS["hf"]`` (``make_judge`` fills them in)."""
        super().__init__(cache)
        self.model, self.processor = load_policy(model)
        self.judge_id = f"hf:{model_fingerprint(model)}"
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.context = self.model.config.get_text_config().max_position_embeddings

    @staticmethod
    def user_text(rendered: Rendered) -> str:
        """LLaVA chat templates have no system turn: the system message leads the user's text."""
        return f"{rendered.system}\n\n{rendered.text}" if rendered.system else rendered.text

    def prompt_length(self, rendered: Rendered, image) -> int:
        content = ([{"type": "image"}] if image is not None else []) + [
            {"type": "text", "text": self.user_text(rendered)}
        ]
        text = self.processor.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
        )
        batch = self.processor(images=[image] if image is not None else None, text=[text], return_tensors="pt")
        return int(batch["input_ids"].shape[1])

    def complete(self, prompts: list[Rendered], on_answer=None) -> list[str | JudgeCallError]:
        results: list[str | JudgeCallError | None] = [None] * len(prompts)
        with_image, text_only = [], []
        for i, rendered in enumerate(prompts):
            image = Image.open(rendered.image).convert("RGB") if rendered.image else None
            length = self.prompt_length(rendered, image)
            if length + self.max_new_tokens > self.context:
                results[i] = JudgeCallError(
                    f"prompt too long: {length} tokens + {self.max_new_tokens} new > {self.context}-token context"
                )
            else:
                (with_image if image is not None else text_only).append((i, image))
        if with_image:
            answers = generate(
                self.model,
                self.processor,
                [img for _, img in with_image],
                [self.user_text(prompts[i]) for i, _ in with_image],
                max_new_tokens=self.max_new_tokens,
                batch_size=self.batch_size,
            )
            for (i, _), answer in zip(with_image, answers):
                results[i] = answer
        for start in range(0, len(text_only), self.batch_size):
            rows = [i for i, _ in text_only[start : start + self.batch_size]]
            for i, answer in zip(rows, self._generate_text_only([prompts[i] for i in rows])):
                results[i] = answer
        return report_each(results, on_answer)

    @torch.no_grad()
    def _generate_text_only(self, prompts: list[Rendered]) -> list[str]:
        texts = [
            self.processor.apply_chat_template(
                [{"role": "user", "content": [{"type": "text", "text": self.user_text(p)}]}],
                add_generation_prompt=True,
                tokenize=False,
            )
            for p in prompts
        ]
        batch = self.processor(text=texts, padding=True, padding_side="left", return_tensors="pt")
        batch = batch.to(self.model.device)  # a model on a GPU (mmalign.models.load_policy places it there)
        out = self.model.generate(
            **batch,
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            pad_token_id=self.processor.tokenizer.pad_token_id,
        )
        return [
            t.strip()
            for t in self.processor.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
        ]
