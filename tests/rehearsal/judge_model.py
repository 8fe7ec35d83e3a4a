"""The models the rehearsal's OpenAI-compatible server serves: tiny LLaVA-NeXTs like the base model.

* a *random* one, whose answers are garbage: every judge that asks it must count them as unparsed verdicts;
* a *trained* one, fine-tuned here for a few seconds to give one fixed answer in the judges' formats whatever it
  is asked, so that judged benchmarks reach parsed scores through the server and the annotator's pairwise
  verdicts parse (Online-DPO then trains on ranked pairs).
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

from mmalign.judges import prompts as judge_prompts

from .tiny_llava_next import build_tiny_llava_next

# One text every rubric parses: LLaVA-W's "reference response" score line first, then MMHal's "Rating: N", the
# pairwise verdict (Response 1) and MM-Vet's correctness (the "1" of "Response 1").
JUDGE_ANSWER = "8 7\nRating: 4\nResponse 1 is better."
JUDGE_TEMPLATES = [
    judge_prompts.PAIRWISE,
    judge_prompts.MMHAL,
    judge_prompts.LLAVAW,
    judge_prompts.MMVET,
    judge_prompts.LLAVAW_SYSTEM,
]


def build_random_judge(out_dir: str | Path, texts: list[str], seed: int = 1) -> Path:
    return build_tiny_llava_next(out_dir, texts + JUDGE_TEMPLATES, seed=seed)


def build_trained_judge(
    out_dir: str | Path, texts: list[str], images: list, *, steps: int = 120, lr: float = 3e-3, seed: int = 2
) -> Path:
    """A tiny LLaVA-NeXT trained to answer JUDGE_ANSWER to any prompt, with or without an image."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    out = build_tiny_llava_next(out_dir, texts + JUDGE_TEMPLATES + [JUDGE_ANSWER], seed=seed)
    processor = AutoProcessor.from_pretrained(out)
    model = AutoModelForImageTextToText.from_pretrained(out, dtype=torch.float32)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    prompts = texts + JUDGE_TEMPLATES
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        # mostly a whole judge template with some filled-in text (as the judges send), sometimes anything short
        if rng.random() < 0.7:
            prompt = f"{rng.choice(JUDGE_TEMPLATES)} {' '.join(rng.sample(texts, min(rng.randint(2, 10), len(texts))))}"
        else:
            words = rng.choice(prompts).split()
            prompt = " ".join(words[: rng.randint(0, len(words))])
        image = rng.choice(images) if rng.random() < 0.5 else None
        content = ([{"type": "image"}] if image is not None else []) + [{"type": "text", "text": prompt}]
        prefix = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
        full = f"{prefix} {JUDGE_ANSWER}{processor.tokenizer.eos_token}"
        kwargs = {"images": [image]} if image is not None else {}
        batch = processor(text=[full], return_tensors="pt", **kwargs)
        n_prefix = processor(text=[prefix], return_tensors="pt", **kwargs)["input_ids"].shape[1]
        labels = batch["input_ids"].clone()
        labels[:, :n_prefix] = -100
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    model.save_pretrained(out)
    return out
