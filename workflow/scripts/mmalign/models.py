"""Loading a policy (base model, optionally with a trained adapter) and batched generation."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)


def load_policy(model_dir: str | Path, adapter_dir: str | Path | None = None, compute=None):
    """A model ready for inference and its processor; a PEFT adapter is merged in for speed. ``compute``: the
    config's compute section (precision and attention, resolved for this job's device; default auto). On a GPU
    the model is placed on it, and ``generate`` sends each batch there."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from mmalign.compute import resolve_here

    resolved = resolve_here(compute)
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, **resolved.model_kwargs())
    return ready_for_inference(model, adapter_dir, resolved), processor


def ready_for_inference(model, adapter_dir, resolved):
    """``model`` with its trained adapter (if any) merged in, in the job's dtype (the adapter's float32 projector or
    head would otherwise sit in a bf16 model), on the job's device, in eval mode. ``resolved``: a
    ``mmalign.compute.Resolved``."""
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload().to(resolved.torch_dtype)
    if resolved.device == "cuda":
        model = model.to("cuda")
    return model.eval()


def user_message(prompt: str) -> list[dict]:
    """One user turn with the image placeholder first, as LLaVA's chat templates expect."""
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]


def unmasked_position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """RoPE positions as generate() derives them from a padding mask; passed explicitly when image tokens are
    later zeroed in the mask, so that hiding them removes attention without shifting positions."""
    return (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 1)


def stop_token_ids(tokenizer, stop_strings: list[str]) -> list[int]:
    """EOS plus every vocabulary token whose text contains a stop string (e.g. '.', '▁.', '...').
    Used as extra end-of-sequence ids, which ends each sequence of a batch on its own; this works for any
    tokenizer, where transformers' stop_strings needs BPE-style vocabularies."""
    special = set(tokenizer.all_special_ids)
    ids = {i for tok, i in tokenizer.get_vocab().items() if i not in special and any(s in tok for s in stop_strings)}
    return [tokenizer.eos_token_id, *sorted(ids)]


def answer_complete_criteria(tokenizer, prompt_length: int, answer_complete):
    """A stopping criterion that ends each row once ``answer_complete(decoded answer so far)`` is true: what a
    benchmark's parse rule reads is then fixed (POPE: its first word), and the tokens after it are never used.
    A finished row is padded while the others go on, as at EOS, so their arithmetic is unchanged."""
    from transformers import StoppingCriteria

    class AnswerComplete(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            texts = tokenizer.batch_decode(input_ids[:, prompt_length:], skip_special_tokens=True)
            return torch.tensor([bool(answer_complete(t)) for t in texts], device=input_ids.device)

    return AnswerComplete()


@torch.no_grad()
def generate(
    model,
    processor,
    images: list,
    prompts: list[str],
    *,
    assistant_prefixes: list[str] | None = None,
    max_new_tokens: int = 64,
    batch_size: int = 32,
    do_sample: bool = False,
    temperature: float = 1.0,
    seed: int = 0,
    progress: str | None = None,
    transform=None,
    stop_strings: list[str] | None = None,
    answer_complete=None,
) -> list[str]:
    """Answers to (image, prompt) pairs, generated in left-padded batches; returns decoded new text only.

    ``assistant_prefixes`` start each answer with given text (reference-guided generation);
    ``transform(batch, rows)`` may edit a processed batch before generation (BDHS masks and noise), where
    ``rows`` are the indices of the batch's examples in the input lists; ``stop_strings`` end an answer early;
    ``answer_complete(text)`` ends an answer once what its benchmark reads of it is decided.
    """
    from tqdm import tqdm
    from transformers import set_seed

    set_seed(seed)
    texts = [
        processor.apply_chat_template(user_message(p), add_generation_prompt=True, tokenize=False) for p in prompts
    ]
    if assistant_prefixes is not None:
        texts = [f"{t} {prefix}".rstrip() for t, prefix in zip(texts, assistant_prefixes)]
    # a template that writes BOS itself (as mmalign.train.chat_format makes it for training) must not get a second
    bos = processor.tokenizer.bos_token
    add_special_tokens = not (bos and texts and texts[0].startswith(bos))
    outputs: list[str] = []
    starts = range(0, len(texts), batch_size)
    for start in tqdm(starts, desc=progress or "generate", disable=progress is None, mininterval=5):
        rows = list(range(start, min(start + batch_size, len(texts))))
        batch = processor(
            images=[images[i] for i in rows],
            text=[texts[i] for i in rows],
            padding=True,
            padding_side="left",
            return_tensors="pt",
            add_special_tokens=add_special_tokens,
        )
        if transform is not None:
            batch = transform(batch, rows)
        batch = batch.to(model.device)  # pixel values stay float32 here: the vision tower casts them to its dtype
        kwargs = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, pad_token_id=processor.tokenizer.pad_token_id)
        if do_sample:
            kwargs["temperature"] = temperature
        if stop_strings:
            kwargs["eos_token_id"] = stop_token_ids(processor.tokenizer, stop_strings)
        if answer_complete is not None:
            kwargs["stopping_criteria"] = [
                answer_complete_criteria(processor.tokenizer, batch["input_ids"].shape[1], answer_complete)
            ]
        out = model.generate(**batch, **kwargs)
        new_tokens = out[:, batch["input_ids"].shape[1] :]
        outputs.extend(processor.batch_decode(new_tokens, skip_special_tokens=True))
    return [o.strip() for o in outputs]
