"""One RL variant's settings (config ``variants.<name>`` with method rloo or ppo, its keys under ``rl:``), kept apart
from ``mmalign.train.rl`` so that the config checks read them without importing torch or TRL."""

from __future__ import annotations

from dataclasses import dataclass, field

from .stability import StabilityRule

METHODS = ("rloo", "ppo")

# The paper's settings where it states them (App. A); None in RLSettings means "this method's default".
METHOD_DEFAULTS = {
    # RLOO: k=4 at temperature 1.0, 2 epochs, batch 256, lr 3e-4, KL beta 0.4
    "rloo": {"learning_rate": 3e-4, "epochs": 2.0, "batch_size": 256, "beta": 0.4, "ppo_epochs": 1},
    # PPO: 3 epochs, lr 1.41e-5 constant, batch 32. Not stated, chosen here: beta 0.05 and 4 PPO epochs per
    # rollout, the defaults of TRL's last PPO trainer, whose default learning rate (1.41e-5) the paper's is.
    "ppo": {"learning_rate": 1.41e-5, "epochs": 3.0, "batch_size": 32, "beta": 0.05, "ppo_epochs": 4},
}


@dataclass
class RLSettings:
    """One RL run's settings (config ``variants.<name>`` of an RL variant)."""

    method: str = "rloo"  # rloo | ppo
    learning_rate: float | None = None
    epochs: float | None = None  # passes over the prompts
    max_steps: int | None = None  # optional cap on optimizer steps (overrides epochs)
    # Completions per optimizer step, as TRL counts it (prompts x num_generations): 256 = 64 prompts x 4 samples.
    # The paper's "batch 256" does not say which it counts; completions is how TRL's RLOO counts its batch.
    batch_size: int | None = None
    gradient_accumulation_steps: int = 1  # batch_size is split into this many micro-batches
    num_generations: int = 4  # k samples per prompt (TRL needs at least 2, for PPO too)
    temperature: float = 1.0
    max_completion_length: int = 256  # not stated in the paper
    beta: float | None = None  # KL coefficient (RLOO: sequence-level penalty; PPO: per token)
    max_grad_norm: float = 1.0
    lr_scheduler_type: str = "constant"  # the paper states constant for PPO; RLOO's schedule is not stated
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0  # RL compares log-probs of the same tokens across passes: dropout would bias ratios
    max_prompts: int | None = None  # a sample of the pair table's prompts (None: all)
    seed: int = 0
    logging_steps: int = 1  # the stability rule reads the per-step log
    normalise_rewards: bool = True
    # PPO only
    clip_range: float = 0.2
    vf_coef: float = 0.1
    gae_lambda: float = 0.95
    gamma: float = 1.0
    cliprange_value: float = 0.2
    ppo_epochs: int | None = None  # passes over one rollout (TRL's num_iterations)
    stability: dict = field(default_factory=dict)  # StabilityRule fields (max_kl, min_length_ratio, ...)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"RL method must be one of {METHODS}, got {self.method!r}")
        for key, value in METHOD_DEFAULTS[self.method].items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        if self.batch_size % (self.num_generations * self.gradient_accumulation_steps):
            raise ValueError("batch_size must be a multiple of num_generations x gradient_accumulation_steps")
        StabilityRule.from_dict(self.stability)  # unknown keys fail now, not after training

    @property
    def rule(self) -> StabilityRule:
        return StabilityRule.from_dict(self.stability)

    @classmethod
    def from_spec(cls, spec: dict) -> RLSettings:
        return cls(**{k: v for k, v in spec.items() if k in cls.__dataclass_fields__})

    @classmethod
    def from_variant(cls, spec: dict) -> RLSettings:
        """A variant entry: ``method`` and ``seed`` from the entry, every other setting from its ``rl:`` section
        (the DPO keys a variant inherits from variant_defaults do not apply); an unknown key is named."""
        rl = dict(spec.get("rl") or {})
        unknown = sorted(set(rl) - set(cls.__dataclass_fields__) - {"method", "seed"})
        if unknown:
            raise ValueError(f"unknown RL settings {unknown} (known: {sorted(set(cls.__dataclass_fields__))})")
        return cls(**{**rl, "method": spec["method"], "seed": spec.get("seed", rl.get("seed", 0))})
