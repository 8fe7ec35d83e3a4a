"""Launching training on the hardware a job was given: GPU checks, the accelerate command, the accelerate
configs for the paper study, and two-process CPU training (gloo) matching one process."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from mmalign.compute import ComputeError, micro_batches
from mmalign.gpus import GPUUnavailableError, requested_gpus
from mmalign.train.launch import ACCELERATE_CONFIGS, accelerate_command, plan_launch, train_variant


@pytest.mark.parametrize(
    "resources, gpus",
    [({}, 0), ({"gpu": 2}, 2), ({"gres": "gpu"}, 1), ({"gres": "gpu:4"}, 4), ({"gres": "gpu:a100:2"}, 2),
     ({"gres": "shard:1"}, 0), ({"gpu": 0, "mem_mb": 4000}, 0)],
)  # fmt: skip
def test_requested_gpus_reads_the_slurm_plugin_resources(resources, gpus):
    assert requested_gpus(resources) == gpus


def test_a_gpu_request_without_a_gpu_fails_with_a_message_saying_so():
    with pytest.raises(GPUUnavailableError, match=r"asks for 2 GPU\(s\).*torch.cuda.is_available\(\) is False"):
        plan_launch({"gpu": 2}, threads=4, cuda_available=False)
    with pytest.raises(GPUUnavailableError, match="sees only 1"):
        plan_launch({"gres": "gpu:2"}, threads=4, cuda_available=True, visible_gpus=1)


def test_processes_default_to_one_per_gpu_and_share_the_threads():
    assert plan_launch({}, threads=2, cuda_available=False).processes == 1
    gpu_plan = plan_launch({"gpu": 4}, threads=16, cuda_available=True, visible_gpus=8)
    assert (gpu_plan.processes, gpu_plan.threads_per_process, gpu_plan.use_cpu) == (4, 4, False)
    cpu_plan = plan_launch({"processes": 2, "accelerate": "ddp"}, threads=2, cuda_available=False)
    assert (cpu_plan.processes, cpu_plan.threads_per_process, cpu_plan.use_cpu) == (2, 1, True)
    with pytest.raises(ValueError, match="no config/accelerate/zero9.yaml"):
        plan_launch({"processes": 2, "accelerate": "zero9"}, threads=2, cuda_available=False)


def test_the_global_batch_is_split_evenly_over_processes():
    assert micro_batches(16, None, 1) == (16, 1) and micro_batches(16, None, 8) == (2, 1)
    with pytest.raises(ComputeError, match="does not split evenly over 3"):
        micro_batches(16, None, 3)


def test_a_job_whose_processes_cannot_reach_the_global_batch_fails_before_training(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"variant": "dpo_x", "method": "dpo", "batch_size": 16, "per_device_batch_size": 4}))
    args = [spec, "model", "pairs.parquet", tmp_path / "out", tmp_path / "metrics.json"]
    with pytest.raises(ComputeError, match=r"variants.dpo_x.per_device_batch_size: 4 per device .* over 8 process"):
        train_variant(*args, resources={"processes": 8}, threads=8)
    assert not (tmp_path / "out").exists()


def test_accelerate_command_launches_the_worker_module_with_the_named_config():
    plan = plan_launch({"gpu": 8, "accelerate": "deepspeed_zero3"}, threads=32, cuda_available=True)
    cmd = accelerate_command(plan, ["spec.json", "model", "pairs.parquet", "out", "metrics.json"], port=29555)
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--config_file") + 1] == str(ACCELERATE_CONFIGS / "deepspeed_zero3.yaml")
    assert cmd[cmd.index("--num_processes") + 1] == "8" and cmd[cmd.index("--num_cpu_threads_per_process") + 1] == "4"
    assert cmd[cmd.index("-m", 3) :] == [
        "-m",
        "mmalign.train.launch",
        "spec.json",
        "model",
        "pairs.parquet",
        "out",
        "metrics.json",
    ]


@pytest.mark.parametrize("name, kind", [("ddp", "MULTI_GPU"), ("deepspeed_zero3", "DEEPSPEED"), ("fsdp", "FSDP")])
def test_accelerate_configs_load_with_accelerate(name, kind):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(ACCELERATE_CONFIGS / f"{name}.yaml"))
    assert config.distributed_type.value == kind and config.mixed_precision == "no"
    if kind == "DEEPSPEED":
        assert config.deepspeed_config["zero_stage"] == 3 and config.deepspeed_config["zero3_save_16bit_model"]
    if kind == "FSDP":
        assert config.fsdp_config["fsdp_sharding_strategy"] == "FULL_SHARD"
        assert config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"


# Two gloo ranks average two half-batch gradients where one process takes the mean over the whole batch: the
# same update up to float32 summation order. Measured: losses 6e-8 apart, weights 9e-6 (of 0.2); these bounds
# leave room for other CPUs while still failing for any real difference (a wrong batch split, a missing
# all-reduce or different data order move the loss by >1e-2 and the weights by >1e-3).
LOSS_TOLERANCE = 1e-4
WEIGHT_TOLERANCE = 1e-4


@pytest.mark.slow
def test_two_cpu_processes_train_like_one(tiny_model, pairs, tmp_path):
    model_dir, _ = tiny_model
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({
        "variant": "dpo_two_ranks", "loss_type": ["sigmoid"], "learning_rate": 0.05, "projector_learning_rate": 0.05,
        "batch_size": 8, "max_pairs": 32, "lora_r": 4, "lora_alpha": 8, "logging_steps": 1, "seed": 0,
    }))  # fmt: skip
    runs = {}
    for processes in (1, 2):
        out = tmp_path / f"p{processes}"
        out.mkdir()
        plan = train_variant(
            spec,
            model_dir,
            pairs,
            out,
            out / "metrics.json",
            {"processes": processes},
            threads=2,
            log_path=out / "launch.log",
        )
        assert plan.processes == processes
        runs[processes] = out
    metrics = {p: json.loads((runs[p] / "metrics.json").read_text()) for p in runs}
    assert metrics[2]["processes"] == 2 and metrics[1]["processes"] == 1  # two ranks really ran
    assert metrics[1]["steps"] == metrics[2]["steps"] == 4
    losses = {p: [e["loss"] for e in map(json.loads, open(runs[p] / "train_log.jsonl")) if "loss" in e] for p in runs}
    assert len(losses[1]) == len(losses[2]) == 4
    assert max(abs(a - b) for a, b in zip(losses[1], losses[2])) < LOSS_TOLERANCE, losses
    one, two = (load_file(runs[p] / "adapter" / "adapter_model.safetensors") for p in (1, 2))
    assert one.keys() == two.keys()
    lora_b = [k for k in one if "lora_B" in k]
    assert lora_b and any(one[k].abs().sum() > 0 for k in lora_b)  # it trained
    assert max((one[k] - two[k]).abs().max().item() for k in one) < WEIGHT_TOLERANCE
