"""A LLaVA / LLaVA-NeXT backbone with a scalar reward head, which transformers 5.23 does not ship.

The classes follow transformers' ``GenericForSequenceClassification`` (the backbone is what
``AutoModel.from_config`` gives for the config, ``score = nn.Linear(hidden, 1)``), so a saved
``Llava*ForConditionalGeneration`` directory loads into them: the checkpoint's ``model.*`` keys are the backbone,
``lm_head`` is ignored and ``score`` starts fresh. Only the pooled position differs from the generic class: it is
the last position whose attention mask is 1, not the last token that is not the pad token, so that left and right
padding give a row the same score and an answer ending in a token equal to the pad token (EOS used as pad) is
still read at its end. Image tokens are never padding (the processor expands them inside each row).

Importing this module registers both classes with ``AutoModelForSequenceClassification`` (TRL and
``load_reward_model`` load through it), so import it before loading a LLaVA reward model by the auto class.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import (
    AutoModelForSequenceClassification,
    LlavaConfig,
    LlavaNextConfig,
)
from transformers.modeling_layers import GenericForSequenceClassification
from transformers.modeling_outputs import SequenceClassifierOutputWithPast
from transformers.models.llava.modeling_llava import LlavaPreTrainedModel
from transformers.models.llava_next.modeling_llava_next import LlavaNextPreTrainedModel

from mmalign.adapters import LM_LINEAR_LAYERS, trainable_in_float32
from mmalign.models import ready_for_inference, unmasked_position_ids, user_message

# a checkpoint of the generative model carries lm_head (unused here) and lacks score (trained here)
_IGNORE_MISSING = [r"^score\."]
_IGNORE_UNEXPECTED = [r"lm_head\."]  # saved as lm_head, reported as language_model.lm_head


def last_attended(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last position whose mask is 1, per row: the end of the answer for left or right padding."""
    positions = torch.arange(attention_mask.shape[-1], device=attention_mask.device)
    return (positions * (attention_mask > 0)).argmax(-1)


class _RewardHead(GenericForSequenceClassification):
    """The generic class's construction (backbone + ``score``) with an attention-mask pooled forward pass."""

    _keys_to_ignore_on_load_missing = _IGNORE_MISSING
    _keys_to_ignore_on_load_unexpected = _IGNORE_UNEXPECTED

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutputWithPast:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if position_ids is None:
            # positions counted over attended tokens only: a left-padded row sees the positions it has alone
            position_ids = unmasked_position_ids(attention_mask)
        outputs = self.model(
            input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            pixel_values=pixel_values,
            use_cache=False,
            **kwargs,
        )
        hidden = outputs.last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        pooled = hidden[rows, last_attended(attention_mask).to(hidden.device)]
        logits = self.score(pooled)  # (batch, 1): only the pooled position is scored
        loss = None
        if labels is not None:
            loss = nn.functional.mse_loss(logits.squeeze(-1), labels.to(logits.dtype))
        return SequenceClassifierOutputWithPast(loss=loss, logits=logits)


class LlavaForSequenceClassification(_RewardHead, LlavaPreTrainedModel):
    """LLaVA (1.5) backbone with a scalar head on the last attended token."""

    config_class = LlavaConfig


class LlavaNextForSequenceClassification(_RewardHead, LlavaNextPreTrainedModel):
    """LLaVA-NeXT (1.6) backbone with a scalar head; ``image_sizes`` passes through to the AnyRes packing."""

    config_class = LlavaNextConfig


AutoModelForSequenceClassification.register(LlavaConfig, LlavaForSequenceClassification, exist_ok=True)
AutoModelForSequenceClassification.register(LlavaNextConfig, LlavaNextForSequenceClassification, exist_ok=True)


def attach_reward_lora(model, r: int, alpha: int, dropout: float):
    """A PeftModel: LoRA on the language model's linear layers, the ``score`` head trained in full.

    The vision tower and the projector stay frozen: the paper's reward-model recipe (Appendix A) names only LoRA
    and the head, and a frozen projector keeps the RM's image features those of the policy it will judge."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=LM_LINEAR_LAYERS,
        modules_to_save=["score"],
        task_type="SEQ_CLS",
    )
    return trainable_in_float32(get_peft_model(model, config))


def load_reward_model(model_dir: str | Path, adapter_dir: str | Path | None = None, compute=None):
    """The reward model (eval mode) and its processor; a trained adapter (LoRA + head) is merged in. ``compute``:
    the config's compute section (precision and attention for this job's device; float32 on a CPU)."""
    from transformers import AutoProcessor

    from mmalign.compute import resolve_here

    resolved = resolve_here(compute)
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1, **resolved.model_kwargs())
    model.config.get_text_config().pad_token_id = processor.tokenizer.pad_token_id
    return ready_for_inference(model, adapter_dir, resolved), processor


def conversation(prompt: str, answer: str) -> list[dict]:
    """The user turn (image first, as at inference) followed by the assistant's answer."""
    return [*user_message(prompt), {"role": "assistant", "content": [{"type": "text", "text": answer}]}]


def render(processor, prompt: str, answer: str) -> str:
    return processor.apply_chat_template(conversation(prompt, answer), tokenize=False)


def encode(processor, images: list, texts: list[str]) -> dict:
    """A right-padded batch; a template that writes BOS itself does not get a second one."""
    bos = processor.tokenizer.bos_token
    add_special_tokens = not (bos and texts and texts[0].startswith(bos))
    return processor(
        images=images,
        text=texts,
        padding=True,
        padding_side="right",
        return_tensors="pt",
        add_special_tokens=add_special_tokens,
    )


def reward_scores(model, processor, images: list, prompts: list[str], answers: list[str], batch_size: int = 8):
    """The scalar reward of each (image, prompt, answer), in order."""
    texts = [render(processor, p, a) for p, a in zip(prompts, answers)]
    device = next(model.parameters()).device
    scores: list[float] = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            stop = min(start + batch_size, len(texts))
            batch = encode(processor, list(images[start:stop]), texts[start:stop]).to(device)
            scores.extend(model(**batch).logits.squeeze(-1).float().tolist())
    return scores
