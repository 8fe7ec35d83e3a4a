"""Compute settings (mmalign.compute): precision and attention resolved against the job's device, the micro-batch
arithmetic that reaches a global batch, the errors that name the key, and training runs that use them on CPU
(gradient accumulation and checkpointing reach the weights an unsplit batch reaches; a bf16 base model trains
float32 weights)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from mmalign.compute import Compute, ComputeError, Device, micro_batches, resolve
from mmalign.config import ConfigError, apply_defaults, check_references, validate_config
from mmalign.train.dpo import train_dpo
from mmalign.train.settings import DPOSettings, resolved_spec

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"

CPU = Device("cpu", bf16=False, name="cpu")
CPU_BF16 = Device("cpu", bf16=True, name="cpu")
H100 = Device("cuda", bf16=True, flash_attention=True, name="NVIDIA H100 80GB HBM3")
H100_NO_FLASH = Device("cuda", bf16=True, flash_attention=False, name="NVIDIA H100 80GB HBM3")
V100 = Device("cuda", bf16=False, flash_attention=False, name="Tesla V100-SXM2-32GB")


@pytest.mark.parametrize(
    "device, dtype, attention",
    [(CPU, "float32", "sdpa"), (CPU_BF16, "float32", "sdpa"), (H100, "bfloat16", "flash_attention_2"),
     (H100_NO_FLASH, "bfloat16", "sdpa"), (V100, "float32", "sdpa")],
)  # fmt: skip
def test_auto_is_bf16_with_flash_attention_on_a_gpu_and_float32_sdpa_on_a_cpu(device, dtype, attention):
    resolved = resolve(Compute(), device)
    assert (resolved.dtype, resolved.attention, resolved.device) == (dtype, attention, device.kind)
    assert resolved.model_kwargs() == {"dtype": getattr(torch, dtype), "attn_implementation": attention}


@pytest.mark.parametrize(
    "request_, device, message",
    [({"dtype": "bfloat16"}, CPU, r"compute.dtype: bfloat16 asked for, but this CPU \(no AVX512-BF16 or AMX\)"),
     ({"dtype": "bfloat16"}, V100, r"compute.dtype: bfloat16 asked for, but this GPU \(Tesla V100"),
     ({"dtype": "float16"}, CPU, "compute.dtype: float16 needs a CUDA device"),
     ({"attention": "flash_attention_2"}, CPU, "compute.attention: flash_attention_2 needs a CUDA device"),
     ({"attention": "flash_attention_2"}, H100_NO_FLASH, "compute.attention: flash_attention_2 needs"),
     ({"attention": "flash_attention_2", "dtype": "float32"}, H100, "compute.dtype resolves to float32"),
     ({"dtype": "bf16"}, H100, "compute.dtype: 'bf16' is not one of auto, float32, bfloat16, float16"),
     ({"dtipe": "float32"}, H100, "compute.dtipe: not a compute setting")],
)  # fmt: skip
def test_a_request_the_device_cannot_honour_fails_naming_the_key(request_, device, message):
    with pytest.raises(ComputeError, match=message):
        resolve(request_, device)


def test_explicit_requests_are_kept_where_the_device_has_them():
    assert resolve({"dtype": "bfloat16"}, CPU_BF16).dtype == "bfloat16"
    assert resolve({"dtype": "float32", "attention": "eager"}, H100).attention == "eager"
    assert resolve({"dtype": "float16"}, V100).dtype == "float16"


def test_trainer_kwargs_switch_autocast_and_non_reentrant_checkpointing():
    resolved = resolve({"gradient_checkpointing": True}, H100)
    assert resolved.trainer_kwargs() == {
        "bf16": True,
        "fp16": False,
        "activation_checkpointing": True,
        "activation_checkpointing_kwargs": {"use_reentrant": False},
    }
    assert resolve({}, CPU).trainer_kwargs() == {"bf16": False, "fp16": False, "activation_checkpointing": False}


def test_cpu_bf16_support_is_read_from_the_cpu_flags(tmp_path):
    from mmalign.compute import cpu_has_bf16

    (tmp_path / "with").write_text("flags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni\n")
    (tmp_path / "without").write_text("flags\t\t: fpu sse avx2 avx512f avx512_vnni\n")
    assert cpu_has_bf16(tmp_path / "with") and not cpu_has_bf16(tmp_path / "without")
    assert not cpu_has_bf16(tmp_path / "missing")


def test_micro_batches_times_accumulation_times_processes_is_the_global_batch():
    for global_batch, processes in itertools.product([1, 8, 12, 16, 32, 256], [1, 2, 4, 8]):
        for per_device in [None, 1, 2, 3, 4, 8]:
            try:
                size, accumulation = micro_batches(global_batch, per_device, processes)
            except ComputeError:
                share = global_batch / processes
                assert share != int(share) or (per_device and share % per_device)
                continue
            assert size * accumulation * processes == global_batch
            assert size == (per_device or global_batch // processes)
    assert micro_batches(16, 1, 8) == (1, 2) and micro_batches(16, 4, 1) == (4, 4)


def test_a_micro_batch_that_cannot_reach_the_global_batch_names_the_key_and_the_choices():
    with pytest.raises(ComputeError, match=r"^variants.x.per_device_batch_size: 3 per device .* use one of \[1, 2"):
        micro_batches(16, 3, 1, key="variants.x.per_device_batch_size")
    with pytest.raises(ComputeError, match="over 8 process"):
        micro_batches(16, 4, 8)


def test_a_config_with_a_bad_compute_request_or_micro_batch_fails_at_load_naming_the_key():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    apply_defaults(config)
    validate_config(config, SCHEMA)
    check_references(config)
    config["compute"]["dtype"] = "bf16"
    with pytest.raises(ConfigError, match="'compute.dtype': 'bf16' is not one of"):
        validate_config(config, SCHEMA)
    config["compute"]["dtype"] = "auto"
    config["variants"]["dpo_povid"].update(batch_size=16, per_device_batch_size=3)
    config["reward_models"]["rm_povid"].update(batch_size=16, per_device_batch_size=5)
    with pytest.raises(ConfigError) as err:
        check_references(config)
    assert "'variants.dpo_povid.per_device_batch_size': 3 per device cannot reach the global batch 16" in str(err.value)
    assert "'reward_models.rm_povid.per_device_batch_size': 5 per device" in str(err.value)


def test_the_paper_configs_micro_batch_reaches_every_global_batch_on_1_to_8_gpus():
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    apply_defaults(paper)
    assert paper["compute"]["gradient_checkpointing"] is True
    for name, variant in paper["variants"].items():
        if variant["method"] in ("rloo", "ppo"):
            continue
        for gpus in (1, 2, 4, 8):
            micro_batches(variant["batch_size"], variant["per_device_batch_size"], gpus, key=name)


def test_the_variant_spec_carries_the_compute_section_filled_in():
    spec = resolved_spec({"variant": "v", "method": "dpo", "pairset": "p", "compute": {"dtype": "float32"}})
    assert spec["compute"] == {"dtype": "float32", "attention": "auto", "gradient_checkpointing": False}
    rl = resolved_spec({"variant": "r", "method": "rloo", "pairset": "p", "reward_model": "rm"})
    assert rl["compute"] == {"dtype": "auto", "attention": "auto", "gradient_checkpointing": False}
    with pytest.raises(ComputeError, match="compute.atention"):
        DPOSettings(compute={"atention": "sdpa"})


def _trained(tmp_path, tiny_model, pairs, name, **overrides):
    settings = DPOSettings(
        loss_type=["sigmoid"], learning_rate=0.05, projector_learning_rate=0.05, batch_size=8, max_pairs=16,
        lora_r=4, lora_alpha=8, logging_steps=1, reference_logps="inline", **overrides,
    )  # fmt: skip
    metrics = train_dpo(tiny_model[0], pairs, tmp_path / name, settings)
    return metrics, load_file(tmp_path / name / "adapter" / "adapter_model.safetensors")


def _largest_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_gradient_accumulation_and_checkpointing_reach_the_weights_of_the_unsplit_batch(tiny_model, pairs, tmp_path):
    whole, reference = _trained(tmp_path, tiny_model, pairs, "whole")
    split, accumulated = _trained(tmp_path, tiny_model, pairs, "split", per_device_batch_size=2)
    checkpointed, recomputed = _trained(
        tmp_path, tiny_model, pairs, "checkpointed", compute={"gradient_checkpointing": True}
    )
    assert whole["steps"] == split["steps"] == checkpointed["steps"] == 2
    assert any(v.abs().sum() > 0 for k, v in reference.items() if "lora_B" in k)
    # 4 micro-batches of 2 pairs average to the loss of one batch of 8: the same step up to float32 rounding
    # (the sums are taken in another order), far below the step itself (learning rate 0.05)
    assert _largest_difference(reference, accumulated) < 1e-4
    # recomputing activations in the backward pass changes no arithmetic
    assert _largest_difference(reference, recomputed) < 1e-6


def test_a_bf16_base_model_trains_float32_lora_and_projector_weights(tiny_model):
    from transformers import AutoModelForImageTextToText

    from mmalign.train.lora import attach_lora

    base = AutoModelForImageTextToText.from_pretrained(tiny_model[0], dtype=torch.bfloat16)
    model = attach_lora(base, DPOSettings(lora_r=4, lora_alpha=8))
    trained = {n: p.dtype for n, p in model.named_parameters() if p.requires_grad}
    frozen = {p.dtype for p in model.parameters() if not p.requires_grad}
    assert any("multi_modal_projector" in n for n in trained) and any("lora_A" in n for n in trained)
    assert set(trained.values()) == {torch.float32} and frozen == {torch.bfloat16}


def test_an_evaluated_policy_loads_in_the_requested_precision_with_its_adapter_merged(tiny_model, pairs, tmp_path):
    from mmalign.models import load_policy

    _trained(tmp_path, tiny_model, pairs, "run")
    device = Device.detect(use_cpu=True)
    if not device.bf16:
        with pytest.raises(ComputeError, match="compute.dtype: bfloat16"):
            load_policy(tiny_model[0], tmp_path / "run" / "adapter", {"dtype": "bfloat16"})
        return
    model, _ = load_policy(tiny_model[0], tmp_path / "run" / "adapter", {"dtype": "bfloat16"})
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}  # the float32 projector merged and cast
    model32, _ = load_policy(tiny_model[0], tmp_path / "run" / "adapter")
    assert {p.dtype for p in model32.parameters()} == {torch.float32}
