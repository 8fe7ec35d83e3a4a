"""Where a LoRA adapter goes in a LLaVA-family model, and how a trained one is written: shared by the policies of
stage 3 (``mmalign.train``) and the reward models (``mmalign.reward``), which import it, never each other's."""

from __future__ import annotations

from pathlib import Path

# LoRA goes on the language model's linear layers only (the vision tower has q/k/v projections too).
LM_LINEAR_LAYERS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
PROJECTOR = "multi_modal_projector"


def trainable_in_float32(model):
    """Every trained weight in float32. PEFT makes LoRA weights float32 itself, but a module it trains in full
    (``modules_to_save``: the projector, a reward head) stays a copy in the base model's dtype: with bfloat16
    weights Adam's small updates would round away (bf16 keeps 8 bits of mantissa). Under autocast the matmuls
    still run in bfloat16. A float32 model is left as it is."""
    import torch

    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
    return model


def save_adapter(trainer, model, path: str | Path) -> None:
    """Write the trained adapter once. Every rank takes part in gathering the weights (ZeRO-3 and FSDP shard
    them; the gathered dict is the whole model, from which PEFT keeps the adapter's keys); rank 0 writes."""
    state = trainer.accelerator.get_state_dict(trainer.model)
    if trainer.is_world_process_zero():
        model.save_pretrained(path, state_dict=state)
    trainer.accelerator.wait_for_everyone()
