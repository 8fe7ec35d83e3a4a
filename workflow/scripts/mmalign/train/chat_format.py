"""Training sequences framed the way the model sees text at inference, and as it was trained.

TRL's vision collator renders the chat template and tokenizes it with ``add_special_tokens=False`` (so that a
template that writes BOS itself does not get two). LLaVA-1.6's vicuna template (llava-hf) writes neither BOS nor
EOS, while inference (``mmalign.models.generate``) tokenizes with the tokenizer's defaults, which prepend BOS, and
the original LLaVA training ended every answer with ``</s>``. Unfixed, DPO would train on sequences without BOS and
never on the token that ends an answer. ``frame_for_training`` makes the template start with BOS when the
tokenizer adds one, and returns the text to end each answer with (EOS, when the template does not write it).
Models whose template already does both (the default study's tiny LLaVA) are left exactly as they are.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_PROBE = "mmalign-probe-answer"


def _rendered_turn(processor) -> str:
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "q"}]},
        {"role": "assistant", "content": [{"type": "text", "text": _PROBE}]},
    ]
    return processor.apply_chat_template(messages, tokenize=False)


def frame_for_training(processor) -> str:
    """Prefix the chat template with BOS if inference would add one; return the answer suffix ("" or EOS)."""
    tokenizer = processor.tokenizer
    bos, eos = tokenizer.bos_token, tokenizer.eos_token
    adds_bos = bos is not None and tokenizer("x")["input_ids"][:1] == [tokenizer.bos_token_id]
    if adds_bos and not _rendered_turn(processor).startswith(bos):
        processor.chat_template = bos + processor.chat_template
        log.info("chat template: %s prepended for training (the tokenizer adds it at inference)", bos)
    rendered = _rendered_turn(processor)
    after_answer = rendered[rendered.index(_PROBE) + len(_PROBE) :]
    if eos is None or eos in after_answer:
        return ""
    log.info("chat template writes no %s after an answer: it is appended to every chosen and rejected answer", eos)
    return eos


def end_answers(rows: list[dict], suffix: str) -> list[dict]:
    """Append ``suffix`` to the assistant text of each row's chosen and rejected answers (in place)."""
    if not suffix:
        return rows
    for row in rows:
        for key in ("chosen", "rejected"):
            for message in row[key]:
                if message["role"] == "assistant" and isinstance(message["content"], str):
                    message["content"] += suffix
    return rows


def message_text(messages) -> str:
    """The text of a conversational prompt or completion (image parts skipped), or a plain string as is."""
    if isinstance(messages, str):
        return messages
    parts = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            parts.append(content)
        else:
            parts.extend(p["text"] for p in content if p.get("type") == "text" and p.get("text"))
    return "\n".join(parts)
