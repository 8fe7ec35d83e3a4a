"""How a training job runs on the hardware its rule was given: one process, or several through ``accelerate``.

The hardware comes from the job's Snakemake *resources* (set per rule by a profile, see profiles/slurm), not
from the study config, because it changes how a run is computed, not what is computed:

- ``gpu`` (or ``gres: gpu:N`` / ``gpu:model:N``): GPUs the job asks for. If it asks for any and
  ``torch.cuda.is_available()`` is False, the job stops (``mmalign.gpus``) before training.
- ``processes``: training processes; default one per requested GPU, else 1. Several CPU processes train
  data-parallel over gloo (tested), several GPU processes over NCCL.
- ``accelerate``: which ``config/accelerate/<name>.yaml`` launches them (``ddp`` by default;
  ``deepspeed_zero3`` and ``fsdp`` for the paper's 7B model).

``variants.<name>.batch_size`` stays the *global* batch: each of N processes takes batch_size / N, so a run on
more processes sees the same batches (and, up to float rounding, reaches the same weights).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

from mmalign.compute import micro_batches
from mmalign.gpus import check_gpus
from mmalign.judges import make_judge
from mmalign.prefork import pythonpath_with_library
from mmalign.provenance import run_environment
from mmalign.schema import write_json

from .dpo import train_dpo
from .methods import get as get_method
from .ranks import is_rank_zero, world_size
from .settings import DPOSettings

ACCELERATE_CONFIGS = Path(__file__).resolve().parents[4] / "config" / "accelerate"


@dataclass(frozen=True)
class LaunchPlan:
    processes: int
    gpus: int
    accelerate: str  # name of a config/accelerate/<name>.yaml
    threads_per_process: int

    @property
    def use_cpu(self) -> bool:
        return self.gpus == 0


def plan_launch(resources: dict, threads: int, cuda_available: bool, visible_gpus: int = 0) -> LaunchPlan:
    """The launch plan for a training job; refuses a GPU request on a machine without a usable GPU."""
    gpus = check_gpus(resources, cuda_available, visible_gpus)
    processes = int(resources.get("processes") or gpus or 1)
    if processes < 1:
        raise ValueError(f"resources.processes must be at least 1, got {processes}")
    accelerate = str(resources.get("accelerate") or "ddp")
    if not (ACCELERATE_CONFIGS / f"{accelerate}.yaml").is_file():
        known = sorted(p.stem for p in ACCELERATE_CONFIGS.glob("*.yaml"))
        raise ValueError(f"resources.accelerate: no config/accelerate/{accelerate}.yaml (known: {', '.join(known)})")
    return LaunchPlan(processes, gpus, accelerate, max(1, threads // processes))


def accelerate_command(plan: LaunchPlan, worker_args: list[str], port: int) -> list[str]:
    """``accelerate launch`` of this module's worker on ``plan.processes`` processes of one machine.

    accelerate has no multi-process CPU launcher besides mpirun (``--cpu`` starts one process), so on CPU we
    use its DDP launcher (torch.distributed.run) and the worker trains with ``use_cpu``: ranks talk over gloo.
    """
    return [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(ACCELERATE_CONFIGS / f"{plan.accelerate}.yaml"),
        "--num_processes", str(plan.processes),
        "--num_machines", "1",
        "--main_process_port", str(port),
        "--num_cpu_threads_per_process", str(plan.threads_per_process),
        "-m", "mmalign.train.launch", *worker_args,
    ]  # fmt: skip


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_micro_batches(spec_path, processes: int) -> None:
    """The variant's per-device batch reaches its global batch over the job's processes (else ComputeError naming
    the variant's key), checked before any process starts or any model loads. RL variants count their own."""
    spec = json.loads(Path(spec_path).read_text())
    if get_method(spec.get("method", DPOSettings.method)).reward_model:
        return
    settings = DPOSettings.from_spec(spec)
    key = f"variants.{spec.get('variant', '<variant>')}.per_device_batch_size"
    micro_batches(settings.batch_size, settings.per_device_batch_size, processes, key=key)


def run_worker(
    spec_path: str | Path,
    model_dir: str | Path,
    pairs_path: str | Path,
    out_dir: str | Path,
    metrics_path: str | Path,
    use_cpu: bool,
    judge: dict | None = None,
    judge_cache: str | None = None,
    scenes_path: str | None = None,
    reference_logps: str | None = None,
    reward_model: str | None = None,
) -> dict:
    """Train one variant in this process (one rank of several, or alone); rank 0 writes the metrics.
    Online variants also get their annotator (a ``judges`` entry) and the world's scenes for the exact judge;
    RL variants (rloo, ppo) their reward model's adapter, and train through their method module instead."""
    spec = json.loads(Path(spec_path).read_text())
    method = get_method(spec.get("method", DPOSettings.method))
    if method.reward_model:  # imported by name: RL code enters only the RL variants' code hashes
        metrics = import_module(method.module).train_with_reward_model(
            model_dir, pairs_path, out_dir, spec, reward_model, use_cpu=use_cpu
        )
        metrics = {"variant": spec["variant"], **metrics, "processes": 1, "environment": run_environment()}
        write_json(metrics, metrics_path)
        return metrics
    annotator, scenes = None, None
    if judge:
        annotator = make_judge(judge, cache_path=judge_cache)
        annotator.name = spec.get("annotator") or annotator.judge_id  # named in budget errors
    if scenes_path:
        with open(scenes_path) as fh:
            scenes = {s["id"]: s for s in map(json.loads, fh)}
    metrics = train_dpo(
        model_dir,
        pairs_path,
        out_dir,
        DPOSettings.from_spec(spec),
        use_cpu=use_cpu,
        judge=annotator,
        scenes=scenes,
        reference_logps=reference_logps,
    )
    metrics = {"variant": spec["variant"], **metrics, "processes": world_size(), "environment": run_environment()}
    if is_rank_zero():
        write_json(metrics, metrics_path)
    return metrics


def train_variant(
    spec_path,
    model_dir,
    pairs_path,
    out_dir,
    metrics_path,
    resources: dict,
    threads: int,
    log_path: str | Path | None = None,
    judge: dict | None = None,
    judge_cache: str | None = None,
    scenes_path: str | None = None,
    reference_logps: str | None = None,
    reward_model: str | None = None,
) -> LaunchPlan:
    """Train one variant on the hardware its job was given: in this process, or through ``accelerate launch``.
    RL variants train in one process (their TRL rollouts are not launched over several here)."""
    import torch

    plan = plan_launch(resources, threads, torch.cuda.is_available(), torch.cuda.device_count())
    check_micro_batches(spec_path, plan.processes)
    args = [str(spec_path), str(model_dir), str(pairs_path), str(out_dir), str(metrics_path)]
    online = dict(judge=judge, judge_cache=judge_cache, scenes_path=scenes_path, reference_logps=reference_logps)
    if reward_model:
        if plan.processes > 1:  # the paper's PPO ran on 1 GPU; our RL runs are not launched over several
            import logging

            logging.getLogger(__name__).warning(
                "RL variants (rloo, ppo) train in one process on one device: %d processes asked for, 1 used",
                plan.processes,
            )
        run_worker(*args, use_cpu=plan.use_cpu, reward_model=reward_model)
        return plan
    if plan.processes == 1:
        run_worker(*args, use_cpu=plan.use_cpu, **online)
        return plan
    if plan.use_cpu:
        args.append("--cpu")
    if judge:
        args += ["--judge", json.dumps(judge), "--judge-cache", str(judge_cache)]
    if scenes_path:
        args += ["--scenes", str(scenes_path)]
    if reference_logps:
        args += ["--reference-logps", str(reference_logps)]
    env = {**os.environ, "PYTHONPATH": pythonpath_with_library()}
    with open(log_path or os.devnull, "a") as log:
        subprocess.run(accelerate_command(plan, args, free_port()), env=env, stdout=log, stderr=log, check=True)
    return plan


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One rank of a multi-process training run (started by accelerate).")
    for name in ("spec", "model", "pairs", "out", "metrics"):
        parser.add_argument(name)
    parser.add_argument("--cpu", action="store_true", help="train on CPU (gloo between ranks)")
    parser.add_argument(
        "--judge", type=json.loads, default=None, help="online variants: the annotator's settings (JSON)"
    )
    parser.add_argument("--judge-cache", default=None)
    parser.add_argument(
        "--scenes", default=None, help="the world's scenes (the exact judge checks samples against them)"
    )
    parser.add_argument("--reference-logps", default=None, help="the pair table's precomputed reference log-probs")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s rank {os.environ.get('RANK', '0')} %(levelname)s %(name)s: %(message)s"
    )
    run_worker(
        args.spec,
        args.model,
        args.pairs,
        args.out,
        args.metrics,
        use_cpu=args.cpu,
        judge=args.judge,
        judge_cache=args.judge_cache,
        scenes_path=args.scenes,
        reference_logps=args.reference_logps,
    )


if __name__ == "__main__":
    main()
