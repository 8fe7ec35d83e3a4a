"""How a job runs its model on the hardware it was given: numeric precision, the attention kernel, gradient
checkpointing, and the micro-batch and accumulation that reach a variant's global batch.

The study config's ``compute`` section holds the requests (``dtype``, ``attention``, ``gradient_checkpointing``);
``variants.<name>.per_device_batch_size`` the micro-batch. A request is resolved in the job, against the device
the job actually has (``Device.detect``), before any model is loaded: ``auto`` means bfloat16 and
FlashAttention-2 (when installed) on a GPU, float32 and PyTorch's SDPA on a CPU; a request the device cannot
honour fails naming the config key. ``docs/gpu.md`` says why each default is what it is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

DTYPES = ("auto", "float32", "bfloat16", "float16")
ATTENTION = ("auto", "sdpa", "flash_attention_2", "eager")


class ComputeError(ValueError):
    """A compute request this device (or this batch arithmetic) cannot honour; the message names the key."""


@dataclass(frozen=True)
class Compute:
    """The config's ``compute`` section: what a job asks of its device."""

    dtype: str = "auto"
    attention: str = "auto"
    gradient_checkpointing: bool = False

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ComputeError(f"compute.dtype: {self.dtype!r} is not one of {', '.join(DTYPES)}")
        if self.attention not in ATTENTION:
            raise ComputeError(f"compute.attention: {self.attention!r} is not one of {', '.join(ATTENTION)}")

    @classmethod
    def from_dict(cls, section: dict | None) -> Compute:
        section = dict(section or {})
        unknown = set(section) - set(cls.__dataclass_fields__)
        if unknown:
            raise ComputeError(
                f"compute.{sorted(unknown)[0]}: not a compute setting ({', '.join(cls.__dataclass_fields__)})"
            )
        return cls(**section)

    def as_dict(self) -> dict:
        return asdict(self)


def cpu_has_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX); without it PyTorch emulates bf16 in
    float32 arithmetic, slower than float32 itself."""
    try:
        flags = Path(cpuinfo).read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


@dataclass(frozen=True)
class Device:
    """What the job's device offers: where it computes, whether it has bfloat16, whether FlashAttention-2 runs."""

    kind: str  # "cuda" | "cpu"
    bf16: bool
    flash_attention: bool = False
    name: str = ""

    @classmethod
    def detect(cls, use_cpu: bool = False) -> Device:
        import torch

        if torch.cuda.is_available() and not use_cpu:
            from transformers.utils import is_flash_attn_2_available

            return cls(
                "cuda", torch.cuda.is_bf16_supported(), is_flash_attn_2_available(), torch.cuda.get_device_name(0)
            )
        return cls("cpu", cpu_has_bf16(), False, "cpu")


@dataclass(frozen=True)
class Resolved:
    """A compute request resolved for one device: what the model is loaded and trained with."""

    dtype: str  # float32 | bfloat16 | float16
    attention: str  # sdpa | flash_attention_2 | eager
    gradient_checkpointing: bool
    device: str  # cuda | cpu

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)

    def model_kwargs(self) -> dict:
        """Keyword arguments of ``from_pretrained``: the weights' dtype and the attention kernel."""
        return {"dtype": self.torch_dtype, "attn_implementation": self.attention}

    def trainer_kwargs(self) -> dict:
        """Keyword arguments of a TRL / transformers training config: mixed precision and checkpointing, always
        both given: TRL's configs turn checkpointing on unless told otherwise. transformers 5 names it
        ``activation_checkpointing`` (``gradient_checkpointing`` is its deprecated alias). Non-reentrant: it needs
        no ``enable_input_require_grads`` under PEFT (frozen embeddings)."""
        kwargs = {
            "bf16": self.dtype == "bfloat16",
            "fp16": self.dtype == "float16",
            "activation_checkpointing": self.gradient_checkpointing,
        }
        if self.gradient_checkpointing:
            kwargs["activation_checkpointing_kwargs"] = {"use_reentrant": False}
        return kwargs


def resolve_dtype(requested: str, device: Device) -> str:
    if requested == "auto":
        return "bfloat16" if device.kind == "cuda" and device.bf16 else "float32"
    if requested == "bfloat16" and not device.bf16:
        where = "this GPU" if device.kind == "cuda" else "this CPU (no AVX512-BF16 or AMX)"
        raise ComputeError(
            f"compute.dtype: bfloat16 asked for, but {where} ({device.name or device.kind}) has no bfloat16 "
            "support; use float32, or auto (bfloat16 where the device has it, else float32)"
        )
    if requested == "float16" and device.kind != "cuda":
        raise ComputeError("compute.dtype: float16 needs a CUDA device (this job runs on CPU); use float32 or auto")
    return requested


def resolve_attention(requested: str, device: Device, dtype: str) -> str:
    half = dtype in ("bfloat16", "float16")
    if requested == "auto":
        return "flash_attention_2" if device.kind == "cuda" and device.flash_attention and half else "sdpa"
    if requested == "flash_attention_2":
        if device.kind != "cuda" or not device.flash_attention:
            raise ComputeError(
                "compute.attention: flash_attention_2 needs a CUDA device with the flash-attn package installed "
                f"(this job: {device.name or device.kind}); use sdpa, or auto (FlashAttention-2 where it runs)"
            )
        if not half:
            raise ComputeError(
                f"compute.attention: flash_attention_2 computes in bfloat16 or float16, but compute.dtype "
                f"resolves to {dtype}"
            )
    return requested


def resolve(compute: Compute | dict | None, device: Device) -> Resolved:
    """The request resolved for ``device``; raises ComputeError naming the key it cannot honour."""
    if not isinstance(compute, Compute):
        compute = Compute.from_dict(compute)
    dtype = resolve_dtype(compute.dtype, device)
    attention = resolve_attention(compute.attention, device, dtype)
    return Resolved(dtype, attention, bool(compute.gradient_checkpointing), device.kind)


def micro_batches(global_batch: int, per_device: int | None, processes: int, key: str = "per_device_batch_size"):
    """``(per-device batch, accumulation steps)`` that reach ``global_batch`` over ``processes`` processes:
    global = per_device x accumulation x processes. ``per_device`` None: the whole per-process share at once."""
    if global_batch % processes:
        raise ComputeError(
            f"{key}: the global batch {global_batch} does not split evenly over {processes} training processes"
        )
    share = global_batch // processes
    if per_device is None:
        return share, 1
    if per_device < 1 or share % per_device:
        divisors = [d for d in range(1, share + 1) if share % d == 0]
        raise ComputeError(
            f"{key}: {per_device} per device cannot reach the global batch {global_batch} over {processes} "
            f"process(es) ({share} each); use one of {divisors}"
        )
    return per_device, share // per_device


def resolve_here(compute: Compute | dict | None, use_cpu: bool = False) -> Resolved:
    """The request resolved for this job's device (the first GPU, unless ``use_cpu`` or none is visible)."""
    return resolve(compute, Device.detect(use_cpu))
