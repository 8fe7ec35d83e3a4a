"""The GPU request of a job (its Snakemake resources ``gpu`` or ``gres``), checked before any model is loaded: a
job that asks for GPUs on a machine where torch sees none stops with a clear error instead of running on CPU."""

from __future__ import annotations


class GPUUnavailableError(RuntimeError):
    """A job asked for GPUs on a machine where torch sees none."""


def requested_gpus(resources: dict) -> int:
    """GPUs a job asks for, from the SLURM plugin's resources ``gpu`` or ``gres`` ("gpu", "gpu:2", "gpu:a100:2")."""
    if resources.get("gpu"):
        return int(resources["gpu"])
    parts = str(resources.get("gres") or "").split(":")  # gpu[:model][:count]
    if parts[0] != "gpu":
        return 0
    return int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else 1


def check_gpus(resources: dict, cuda_available: bool, visible_gpus: int = 0) -> int:
    """The GPUs a job asks for, after checking that torch can use them (else a clear error, before any work)."""
    gpus = requested_gpus(resources)
    if gpus and not cuda_available:
        raise GPUUnavailableError(
            f"this job asks for {gpus} GPU(s) (resources gpu/gres), but torch.cuda.is_available() is False on "
            f"this machine; run it where GPUs are visible, or drop the GPU request (e.g. --set-resources "
            f"<rule>:gpu=0) to run on CPU"
        )
    if gpus and visible_gpus and visible_gpus < gpus:
        raise GPUUnavailableError(f"this job asks for {gpus} GPU(s) but torch sees only {visible_gpus}")
    return gpus


def require_requested_gpus(resources: dict) -> int:
    """check_gpus on this machine: for every job that loads a model (training, evaluation, BDHS)."""
    import torch

    return check_gpus(resources, torch.cuda.is_available(), torch.cuda.device_count())
