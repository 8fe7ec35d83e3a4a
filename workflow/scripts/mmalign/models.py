"""Loading a policy (base model, optionally with a trained adapter) and batched generation."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)


def load_policy(model_dir: str | Path, adapter_dir: str | Path | None = None):
    """A model ready for inference and its processor; a PEFT adapter is merged in for speed."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    model.eval()
    return model, processor


def user_message(prompt: str) -> list[dict]:
    """One user turn with the image placeholder first, as LLaVA's chat templates expect."""
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]


@torch.no_grad()
def generate(model, processor, images: list, prompts: list[str], *, max_new_tokens: int = 64, batch_size: int = 32,
             do_sample: bool = False, temperature: float = 1.0, seed: int = 0, progress: str | None = None) -> list[str]:
    """Answers to (image, prompt) pairs, generated in left-padded batches; returns decoded new text only."""
    from tqdm import tqdm
    from transformers import set_seed

    set_seed(seed)
    texts = [processor.apply_chat_template(user_message(p), add_generation_prompt=True, tokenize=False) for p in prompts]
    outputs: list[str] = []
    starts = range(0, len(texts), batch_size)
    for start in tqdm(starts, desc=progress or "generate", disable=progress is None, mininterval=5):
        batch = processor(
            images=images[start : start + batch_size],
            text=texts[start : start + batch_size],
            padding=True,
            padding_side="left",
            return_tensors="pt",
        )
        kwargs = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, pad_token_id=processor.tokenizer.pad_token_id)
        if do_sample:
            kwargs["temperature"] = temperature
        out = model.generate(**batch, **kwargs)
        new_tokens = out[:, batch["input_ids"].shape[1] :]
        outputs.extend(processor.batch_decode(new_tokens, skip_special_tokens=True))
    return [o.strip() for o in outputs]
