"""When an RL run counts as "policy training not stable" (the paper's Table 8 marks such runs instead of numbers).

A verdict is a result of the run, read off its logged trajectory, never a crash: ``train_rl`` writes it into the
run's metrics whether the run finished, collapsed or diverged numerically.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

# The canonical names train_rl gives the four quantities the rule reads (TRL's own key where it has one).
REWARD, KL, LENGTH, ENTROPY = "reward", "kl", "response_length", "entropy"
TRACKED = (REWARD, KL, LENGTH, ENTROPY)


@dataclass
class StabilityRule:
    """The rule, with its thresholds (config ``stability``).

    A run is not stable when any of these holds:

    * a logged number is non-finite (NaN / inf), or a tracked metric was logged empty (TRL logs ``None`` when every
      value of a step was NaN), or training itself raised a numerical error (recorded by ``train_rl``);
    * over the last third of the logged steps (the *tail*):
      - the mean KL to the reference (nats per completion token) exceeds ``max_kl``. 1.0 nat per token means
        the policy puts e times the reference's probability on every token it writes: far outside the regime a KL
        penalty of beta 0.4 is meant to hold, i.e. the policy left the reference to chase the reward model;
      - the mean response length falls below ``min_length_ratio`` x its first logged value (collapse towards
        empty answers, a classic reward-hacking failure when short answers avoid penalised content);
      - the mean response length reaches ``max_length_share`` x the completion budget while the first logged
        value was below it (degenerate run-on answers that only the length cap stops);
      - the mean token entropy falls below ``min_entropy_ratio`` x its first logged value (the sampler has
        collapsed onto near-deterministic, usually repetitive text).

    The tail, not the last entry, is judged so that one noisy step neither condemns nor rescues a run; the first
    logged value is the reference point because it is the policy closest to the base model.
    """

    max_kl: float = 1.0
    min_length_ratio: float = 0.2
    max_length_share: float = 0.95
    min_entropy_ratio: float = 0.1
    tail_fraction: float = 1 / 3

    @classmethod
    def from_dict(cls, spec: dict | None) -> StabilityRule:
        known = set(cls.__dataclass_fields__)
        unknown = set(spec or {}) - known
        if unknown:
            raise ValueError(f"unknown stability settings: {sorted(unknown)}")
        return cls(**(spec or {}))


def _finite(value) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def _series(history: list[dict], key: str) -> list[float]:
    return [float(e[key]) for e in history if isinstance(e.get(key), (int, float))]


def _tail_mean(values: list[float], fraction: float) -> float:
    tail = values[-max(1, math.ceil(len(values) * fraction)) :]
    return sum(tail) / len(tail)


def stability_verdict(
    log_history: list[dict], rule: StabilityRule | dict | None = None, max_completion_length: int | None = None
) -> dict:
    """The verdict on a logged trajectory: ``{stable, reasons, rule, tail}``; ``log_history`` is the trainer's log
    (per-step entries with the canonical keys of ``TRACKED``); ``max_completion_length`` enables the run-on check."""
    rule = rule if isinstance(rule, StabilityRule) else StabilityRule.from_dict(rule)
    steps = [e for e in log_history if any(k in e for k in TRACKED)]  # per-step entries, not the final summary
    reasons = []
    for entry in log_history:
        bad = sorted(k for k, v in entry.items() if not _finite(v) or (k in TRACKED and k in entry and v is None))
        if bad:
            reasons.append(f"non-finite {', '.join(bad)} at step {entry.get('step', '?')}")
            break  # the first one says it; the rest of a diverged run is noise
    tail = {}
    if steps:
        kl, length, entropy = (_series(steps, key) for key in (KL, LENGTH, ENTROPY))
        if kl:
            tail[KL] = _tail_mean(kl, rule.tail_fraction)
            if tail[KL] > rule.max_kl:
                reasons.append(f"mean KL over the last third {tail[KL]:.3g} > {rule.max_kl}")
        if length:
            tail[LENGTH] = _tail_mean(length, rule.tail_fraction)
            if tail[LENGTH] < rule.min_length_ratio * length[0]:
                reasons.append(
                    f"responses collapsed: mean length {tail[LENGTH]:.3g} < {rule.min_length_ratio} x {length[0]:.3g}"
                )
            cap = rule.max_length_share * max_completion_length if max_completion_length else None
            if cap is not None and tail[LENGTH] >= cap > length[0]:
                reasons.append(f"responses run on to the length cap: mean length {tail[LENGTH]:.3g} >= {cap:.3g}")
        if entropy:
            tail[ENTROPY] = _tail_mean(entropy, rule.tail_fraction)
            if tail[ENTROPY] < rule.min_entropy_ratio * entropy[0]:
                reasons.append(f"entropy collapsed: {tail[ENTROPY]:.3g} < {rule.min_entropy_ratio} x {entropy[0]:.3g}")
    return {"stable": not reasons, "reasons": reasons, "rule": asdict(rule), "tail": tail, "logged_steps": len(steps)}
