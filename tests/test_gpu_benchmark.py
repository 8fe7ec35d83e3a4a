"""benchmarks/gpu_dpo_step.py and its FLOP formula (mmalign.train.step_flops), on the CPU.

1. ``--tiny`` runs end to end (the tiny LLaVA-NeXT, scaled tiles, float32, SDPA) and writes every figure, finite
   and positive where a rate or a count.
2. The formula's FLOPs of one DPO micro-batch equal FlopCounterMode's count of the same micro-batch (the policy's
   forward and backward on chosen + rejected, and the reference's forward), with and without the reference, with
   and without gradient checkpointing, with SDPA and eager attention. Tolerance: none, the two must be equal.
   Both count the same matrix products (2 FLOPs per multiply-add, the patch convolution, attention at full S^2)
   and the formula reads the shapes of the very batch counted, so any difference is a product the formula gets
   wrong; a percentage tolerance would hide a missing term as small as the LoRA products of the reference (1%).
3. The full-size config.json: a LlavaNextConfig of llava-v1.6-vicuna-7b-hf's architecture, 7.06 B parameters, and
   the formula's FLOPs per position at the paper's ~3,000-position sequences.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmalign.compute import Device
from mmalign.train import step_flops

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_dpo_step.py"
sys.path.insert(0, str(SCRIPT.parent))

import gpu_dpo_step  # noqa: E402


def numbers(tree, path=""):
    """Every number of a JSON tree, with its path."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from numbers(value, f"{path}.{key}")
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from numbers(value, f"{path}[{i}]")
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield path, tree


# ------------------------------------------------------------------------------------------ 1. --tiny


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-bench") / "tiny.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{REPO / 'workflow' / 'scripts'}:{REPO / 'tests'}"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--json", str(out)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, json.loads(out.read_text())


def test_tiny_mode_prints_and_writes_every_figure(tiny_run):
    stdout, figures = tiny_run
    print(stdout)
    for text in ("setup", "s/step", "pairs/s", "positions/s", "MFU", "FlopCounterMode", "pope-like", "description"):
        assert text in stdout
    assert "SLURM hint" in stdout and "total:" in stdout
    assert all(math.isfinite(value) for _, value in numbers(figures)), "a figure is not finite"
    assert figures["setup"]["image_tokens"] == 88  # 672 px at the tiny scale: 16 + 8 x 8 + 8 newlines

    first, checkpointed = figures["training"]
    assert (first["per_device"], first["checkpointing"]) == (1, False)
    assert (checkpointed["per_device"], checkpointed["checkpointing"]) == (2, True)
    for run in figures["training"]:
        assert "error" not in run
        assert run["timed_steps"] >= 1 and run["tiles_per_sequence"] == 5
        for key in ("step_seconds", "pairs_per_second", "seconds_per_pair", "positions_per_second", "mfu", "hfu"):
            assert run[key] > 0, key
        assert run["model_flops_per_step"] > 0 and run["host_max_rss_gib"] > 0
        assert 0 < run["mfu"] < 1 and run["hfu"] >= run["mfu"]
        # accumulation reaches the global batch of 4 pairs
        assert run["per_device"] * run["accumulation"] == figures["arguments"]["global_batch"]
    parts = checkpointed["flops_per_step_by_part"]
    assert parts["checkpointing"] > 0 and first["flops_per_step_by_part"]["checkpointing"] == 0
    assert first["flop_count"]["counted"] == first["flop_count"]["analytic_hardware"]

    pope, description = figures["generation"]
    assert (pope["new_tokens"], description["new_tokens"]) == (3, 16)
    for load in figures["generation"]:
        for key in ("samples_per_second", "prefill_positions_per_second", "generated_tokens_per_second"):
            assert load[key] > 0, key
    assert description["decode_tokens_per_second"] > 0
    assert figures["slurm_hint"]["suggested_runtime_minutes"] > 0
    assert set(figures["phase_seconds"]) >= {"train 1/device", "train 2/device +gc", "generate description"}


# --------------------------------------------------------------------------------- 2. formula vs counter


@pytest.fixture(scope="module")
def benches(tmp_path_factory):
    """A tiny bench per attention kernel, built once."""
    made = {}

    def bench(attention: str):
        if attention not in made:
            args = gpu_dpo_step.parse_args(["--tiny", "--attention", attention, "--steps", "1"])
            made[attention] = gpu_dpo_step.Bench(args, tmp_path_factory.mktemp(f"bench-{attention}"))
        return made[attention]

    return bench


@pytest.mark.parametrize(
    "attention, checkpointing, reference",
    [
        ("sdpa", False, "adapter"),
        ("sdpa", False, None),
        ("sdpa", True, "adapter"),
        ("sdpa", True, None),
        ("sdpa", False, "disabled"),
        ("eager", False, "adapter"),
        ("eager", True, "adapter"),
    ],
)
def test_the_formula_equals_flop_counter_mode_on_a_dpo_micro_batch(benches, attention, checkpointing, reference):
    bench = benches(attention)
    run = gpu_dpo_step.RunConfig(2, checkpointing)
    trainer = bench.trainer(run)
    trainer.args.max_steps = 1
    trainer.train()  # as in the benchmark: the count follows training (checkpointing is switched on by train)
    if reference == "adapter":  # TRL 1.16's own reference: a "ref" copy of the fresh adapter (the study removes it)
        model = trainer.model
        model.add_adapter("ref", model.peft_config["default"])
        for name, param in model.named_parameters():
            if ".default." in name:
                model.get_parameter(name.replace(".default.", ".ref.")).data.copy_(param.data)
    count = bench.flop_count(trainer, run, reference=reference is not None)
    print(attention, checkpointing, reference, count)
    assert count["reference"] == reference
    assert count["counted"] > 0
    assert count["analytic_hardware"] == count["counted"]


def test_the_reference_costs_one_forward_and_its_adapter_the_lora_products():
    arch = step_flops.Architecture.from_config(full_config())
    batch = step_flops.MicroBatch(sequences=2, length=3000, tiles=10, scored=160)
    without = step_flops.dpo_step(arch, [batch], 128, reference=None)
    disabled = step_flops.dpo_step(arch, [batch], 128, reference="disabled")
    adapter = step_flops.dpo_step(arch, [batch], 128, reference="adapter")
    assert disabled.model - without.model == step_flops.forward(arch, batch).model
    assert adapter.model - disabled.model == step_flops.lora(arch, batch, 128)
    with pytest.raises(ValueError, match="reference"):
        step_flops.dpo_step(arch, [batch], 128, reference="inline")


def test_the_lm_head_scores_completions_only_where_trl_compacts():
    config = full_config()
    completion = torch.tensor([[0, 0, 0, 1, 1, 0], [0, 0, 1, 1, 1, 1]])
    batch = {
        "input_ids": torch.ones(2, 6),
        "completion_mask": completion,
        "image_sizes": torch.tensor([[672, 672]] * 2),
    }
    compact = step_flops.micro_batch(batch, config, compact_lm_head=True)
    full = step_flops.micro_batch(batch, config, compact_lm_head=False)
    assert (compact.sequences, compact.length, compact.tiles) == (2, 6, 10)  # 2 x 2 grid + base tile per image
    assert compact.scored == 6 and full.scored == 2 * 5


# ------------------------------------------------------------------------------------ 3. the 7B config


def full_config():
    from transformers import LlavaNextConfig

    return LlavaNextConfig.from_json_file(gpu_dpo_step.FULL_CONFIG)


def test_the_full_config_is_llava_16_vicuna_7b_with_7_06_b_parameters():
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer

    config = full_config()
    text, vision = config.text_config, config.vision_config
    assert (text.hidden_size, text.num_hidden_layers, text.num_attention_heads, text.intermediate_size) == (
        4096,
        32,
        32,
        11008,
    )
    assert (text.vocab_size, text.max_position_embeddings, text.rms_norm_eps) == (32064, 4096, 1e-5)
    assert (vision.hidden_size, vision.num_hidden_layers, vision.num_attention_heads, vision.intermediate_size) == (
        1024,
        24,
        16,
        4096,
    )
    assert (vision.image_size, vision.patch_size, vision.projection_dim) == (336, 14, 768)
    assert config.image_token_id == 32000 and config.vision_feature_layer == -2
    assert config.image_grid_pinpoints == [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
    assert config.vision_feature_select_strategy == "default" and config.projector_hidden_act == "gelu"
    assert not config.tie_word_embeddings
    parameters = gpu_dpo_step.parameter_count(config)
    print(f"{parameters:,} parameters")
    assert 7.055e9 < parameters < 7.07e9
    # the formula's widths are the model's: a decoder layer's products hold all its weights but the norms'
    with torch.device("meta"):
        layer = LlamaDecoderLayer(config.text_config, layer_idx=0)
    arch = step_flops.Architecture.from_config(config)
    assert arch.layer_weights == sum(p.numel() for n, p in layer.named_parameters() if "norm" not in n)
    assert arch.vision_layers_used == 23  # vision_feature_layer -2: the output of 23 of 24 layers


def test_flops_per_position_of_a_paper_pair():
    """One pair at the paper's shapes: a 672x672 image (5 tiles, 2,928 image tokens) and an answer of ~80
    tokens, ~3,000 positions per sequence; the LM head on the completions (CUDA)."""
    arch = step_flops.Architecture.from_config(full_config())
    batch = step_flops.MicroBatch(sequences=2, length=3020, tiles=10, scored=2 * 80)
    flops = step_flops.dpo_step(arch, [batch], 128, reference="adapter")
    per_position = flops.model / batch.positions
    print(f"{per_position / 1e9:.2f} GFLOP per position (model), {flops.hardware / batch.positions / 1e9:.2f} hardware")
    print({k: f"{v / batch.positions / 1e9:.3f}" for k, v in flops.as_dict().items()})
    # the linear layers: 2 policy forward + 2 backward + 2 reference = 6 x 202.4 M weights x 32 layers
    assert flops.lm_linear == 6 * 32 * 202_375_168 * batch.positions
    assert 47e9 < per_position < 52e9
    assert 0.10 < flops.attention / flops.model < 0.15  # full S^2 at ~3,000 positions
    assert 0.02 < flops.vision / flops.model < 0.035  # the frozen tower, twice (policy and reference)
    assert 0.04 < flops.lora / flops.model < 0.06  # r128: forward, backward, and the ref adapter's forward
    # recompute: the fused attention kernel's QK^T in the policy's backward (0.5 of its attention forward), the head
    assert 1.01 < flops.hardware / flops.model < 1.03
    checkpointed = step_flops.dpo_step(arch, [batch], 128, reference="adapter", checkpointing=True)
    assert checkpointed.model == flops.model
    # every decoder layer's forward again (~2*L*W + attention + LoRA per position), and the vision backward
    assert 1.32 < checkpointed.hardware / checkpointed.model < 1.37


def test_peak_flops_by_device_name():
    assert gpu_dpo_step.peak_flops(Device("cuda", True, True, "NVIDIA H100 80GB HBM3"), None)[0] == 989e12
    assert gpu_dpo_step.peak_flops(Device("cuda", True, True, "NVIDIA H100 PCIe"), None)[0] == 756e12
    assert gpu_dpo_step.peak_flops(Device("cuda", True, True, "NVIDIA H200"), None)[0] == 989e12
    assert gpu_dpo_step.peak_flops(Device("cuda", True, True, "NVIDIA A100-SXM4-80GB"), None)[0] == 312e12
    assert gpu_dpo_step.peak_flops(Device("cuda", True, True, "NVIDIA H100 NVL"), None)[0] is None
    assert gpu_dpo_step.peak_flops(Device("cuda", True, True, "NVIDIA H100 NVL"), 835.0)[0] == 835e12


@pytest.mark.parametrize("spec", ["0", "2:xx", "gc", "-1"])
def test_a_configuration_is_pairs_and_an_optional_gc(spec):
    with pytest.raises(Exception, match="PAIRS"):
        gpu_dpo_step.RunConfig.parse(spec)
    assert gpu_dpo_step.RunConfig.parse("4:gc") == gpu_dpo_step.RunConfig(4, True)


def test_a_configuration_out_of_memory_is_reported_and_the_run_goes_on(monkeypatch, tmp_path, capsys):
    """The GPU run's out-of-memory path, on the CPU: the trainer raises as CUDA would."""
    from transformers import Trainer

    def out_of_memory(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(Trainer, "train", out_of_memory)
    figures = gpu_dpo_step.main(["--tiny", "--configs", "4", "--gen-batch", "2", "--json", str(tmp_path / "f.json")])
    assert figures["training"] == [
        {
            "configuration": "4/device",
            "per_device": 4,
            "checkpointing": False,
            "build_seconds": figures["training"][0]["build_seconds"],
            "trainables_cast_to_float32": 0,
            "accumulation": 1,
            "collate_seconds_per_pair": figures["training"][0]["collate_seconds_per_pair"],
            "error": "out of GPU memory at 4 pair(s) per device",
        }
    ]
    assert [g["load"] for g in figures["generation"]] == ["pope-like", "description"]
    assert "nothing to suggest" in figures["slurm_hint"]["note"]
    assert "out of GPU memory at 4 pair(s) per device" in capsys.readouterr().out
    assert json.loads((tmp_path / "f.json").read_text())["training"] == figures["training"]


def test_a_configuration_that_cannot_reach_the_global_batch_fails_before_the_setup(capsys):
    with pytest.raises(SystemExit):
        gpu_dpo_step.parse_args(["--tiny", "--configs", "1", "3"])  # the tiny global batch is 4
    assert "--configs 3: 3 per device cannot reach the global batch 4" in capsys.readouterr().err
