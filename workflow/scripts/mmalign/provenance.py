"""What decides a run's numbers beyond its seed, recorded beside them: the CPU model (or GPU), thread counts and
library versions. The study is bit-for-bit reproducible only where all of these match (docs/uncertainty.md)."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "numpy", "tokenizers", "sentence-transformers")


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what the platform reports."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def run_environment() -> dict:
    """The machine and software a job ran on: CPU, accelerator, threads, OpenMP policy, Python and packages."""
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "cpus_visible": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "gpu": device,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
    }
