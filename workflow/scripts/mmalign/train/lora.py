"""The adapter every variant trains: PEFT LoRA on the language model's linear layers, the multimodal projector
trained in full (``modules_to_save``), the vision tower frozen (the paper's recipe, Appendix A)."""

from __future__ import annotations

from mmalign.adapters import LM_LINEAR_LAYERS, PROJECTOR, trainable_in_float32


def attach_lora(model, settings):
    """A PeftModel of ``model`` with the LoRA settings of ``settings`` (a DPOSettings)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=LM_LINEAR_LAYERS,
        modules_to_save=[PROJECTOR],
        task_type="CAUSAL_LM",
    )
    return trainable_in_float32(get_peft_model(model, config))
