"""One variant's training settings (config ``variants.<name>``): the one layer of training defaults.

The config schema validates these keys (types, ranges) but sets no defaults of its own; a variant spec (and
``results/runs/<variant>/spec.json``) is read through ``DPOSettings.from_spec``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from mmalign.compute import Compute

from .batching import BATCHING, DEFAULT_BATCHING
from .methods import DEFAULT_REJECTED, REJECTED, get


@dataclass
class DPOSettings:
    """One variant's training settings (config ``variants.<name>``)."""

    method: str = "dpo"  # a name of mmalign.train.methods.METHODS
    loss_type: list[str] = field(default_factory=lambda: ["sigmoid"])
    loss_weights: list[float] | None = None
    beta: float = 0.1
    learning_rate: float = 5e-4
    projector_learning_rate: float = 1e-4
    epochs: float = 1.0
    # At least this many optimizer steps, repeating the data when `epochs` gives fewer (0: no floor). Small pair
    # sets otherwise get a handful of full-size Adam steps, whose sign-like first updates perturb the tiny model
    # more than they teach it (NOTES.md, 2026-11-22); the paper searched 3-7 epochs per row for the same reason.
    min_steps: int = 0
    batch_size: int = 16  # the global batch: pairs per optimizer step over every process
    # pairs per forward pass on one device; gradient accumulation makes up the rest (None: a process's whole share)
    per_device_batch_size: int | None = None
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    max_pairs: int | None = None
    rejected: str = DEFAULT_REJECTED  # external | policy | both (Avg-DPO, Eq. 5, gamma 0.5)
    seed: int = 0
    warmup_ratio: float = 0.1
    logging_steps: int = 5
    checkpoint_steps: int = 50
    online: dict = field(default_factory=dict)  # OnlineSettings for the online methods (temperature, ...)
    annotator: str | None = None  # the judge that ranks online samples (config ``judges.<name>``)
    distortion_noise_steps: int = 500  # image_distortion: diffusion steps of the noisy image (POVID: 500)
    # precomputed: reference log-probs computed once per pair before training (mmalign.train.reference), for the
    # methods whose rows are fixed; inline: TRL's forward of the reference at every step
    reference_logps: str = "precomputed"
    # random: the pairs of a batch drawn at random; length_grouped / length_bucketed: pairs of about the same length
    # share a batch (less padding computed, another trajectory; mmalign.train.batching), for fixed pair rows
    batching: str = DEFAULT_BATCHING
    # the config's compute section (mmalign.compute.Compute): precision, attention kernel, gradient checkpointing,
    # resolved against the device when the run starts
    compute: dict = field(default_factory=dict)

    def __post_init__(self):
        method = get(self.method)
        if self.rejected not in REJECTED:
            raise ValueError("rejected must be 'external', 'policy' or 'both'")
        if method.policy_rejected and self.rejected == "external":
            raise ValueError(
                f"{self.method} trains on a policy-derived rejected answer: rejected must be 'policy' or 'both'"
            )
        if self.reference_logps not in ("precomputed", "inline"):
            raise ValueError("reference_logps must be 'precomputed' or 'inline'")
        if self.batching not in BATCHING:
            raise ValueError(f"batching must be one of {', '.join(BATCHING)}, got {self.batching!r}")
        if self.batching != DEFAULT_BATCHING and not method.precomputed_reference:
            raise ValueError(
                f"batching: {self.batching} needs fixed pair rows; {self.method} makes or changes its rows while "
                "training (use batching: random)"
            )
        # every request filled in (spec.json shows them); an unknown or misspelled key fails now, not on the device
        self.compute = Compute.from_dict(self.compute).as_dict()
        if self.loss_weights is not None and len(self.loss_weights) != len(self.loss_type):
            raise ValueError("loss_weights needs one weight per entry of loss_type")

    @classmethod
    def from_spec(cls, spec: dict) -> DPOSettings:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in spec.items() if k in known})


def resolved_spec(spec: dict) -> dict:
    """A variant spec with every training setting filled in (``results/runs/<variant>/spec.json``): its own keys
    (pair set, variant and base model names) and the resolved ``DPOSettings``, or for an RL variant (rloo, ppo)
    the resolved ``RLSettings`` under ``rl`` (the DPO keys it inherited from variant_defaults do not apply)."""
    if get(spec.get("method", DPOSettings.method)).reward_model:
        from .rl_settings import RLSettings

        keep = ("variant", "base_model", "pairset", "method", "reward_model", "seed", "compute")
        resolved = {k: spec[k] for k in keep if k in spec}
        resolved["compute"] = Compute.from_dict(spec.get("compute")).as_dict()
        return {**resolved, "rl": asdict(RLSettings.from_variant(spec))}
    return {**spec, **asdict(DPOSettings.from_spec(spec))}
