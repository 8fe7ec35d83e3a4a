"""Offline DPO with TRL + PEFT: a training step changes the adapter and the projector and logs a loss."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from mmalign.train.dpo import train_dpo
from mmalign.train.settings import DPOSettings


@pytest.mark.parametrize("loss_type", [["sigmoid"], ["ipo"], ["hinge"], ["sigmoid", "sft"]])
def test_dpo_step_changes_adapter_and_projector_and_logs_loss(tiny_model, pairs, tmp_path, loss_type):
    from transformers import AutoModelForImageTextToText

    model_dir, _ = tiny_model
    settings = DPOSettings(
        loss_type=loss_type,
        loss_weights=[1.0, 0.5] if len(loss_type) == 2 else None,
        learning_rate=0.05,
        projector_learning_rate=0.05,
        batch_size=8,
        max_pairs=16,
        lora_r=4,
        lora_alpha=8,
        logging_steps=1,
    )
    metrics = train_dpo(model_dir, pairs, tmp_path, settings)
    assert metrics["steps"] == 2
    log = [json.loads(line) for line in open(tmp_path / "train_log.jsonl")]
    assert any("loss" in e and e["loss"] == e["loss"] for e in log)
    adapter = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # LoRA B starts at zero: nonzero means it trained
    base = AutoModelForImageTextToText.from_pretrained(model_dir).state_dict()
    projector = {k: v for k, v in adapter.items() if "multi_modal_projector" in k}
    assert projector
    changed = [
        not torch.allclose(v, base[k.replace("base_model.model.", "").replace(".modules_to_save.default", "")])
        for k, v in projector.items()
        if k.replace("base_model.model.", "").replace(".modules_to_save.default", "") in base
    ]
    assert changed and any(changed)


def test_loss_weights_must_match_loss_types():
    with pytest.raises(ValueError, match="loss_weights"):
        DPOSettings(loss_type=["sigmoid"], loss_weights=[1.0, 0.5])


def test_min_steps_repeats_a_small_pair_set_until_the_floor(tiny_model, pairs, tmp_path):
    model_dir, _ = tiny_model
    settings = DPOSettings(
        loss_type=["sigmoid"], batch_size=8, max_pairs=12, min_steps=5, lora_r=4, lora_alpha=8, logging_steps=1
    )
    metrics = train_dpo(model_dir, pairs, tmp_path, settings)
    assert metrics["pairs"] == 12 and metrics["steps"] == 5  # 2 steps per pass over 12 pairs: 2.5 passes
    assert metrics["epochs_run"] == 2.5
    log = [json.loads(line) for line in open(tmp_path / "train_log.jsonl")]
    assert sum("loss" in e for e in log) == 5


@pytest.mark.parametrize(
    "rows, epochs, min_steps, expected",
    [(12, 1.0, 0, 2), (12, 1.0, 5, 5), (12, 3.0, 5, 6), (3200, 1.0, 100, 400), (500, 1.0, 100, 100)],
)
def test_planned_steps_is_the_larger_of_the_epochs_and_the_floor(rows, epochs, min_steps, expected):
    from mmalign.train.dpo import planned_steps

    assert planned_steps(rows, DPOSettings(batch_size=8, epochs=epochs, min_steps=min_steps)) == expected
