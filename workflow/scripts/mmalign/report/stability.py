"""Which RL runs did not train stably: the paper's Table 8 shows "policy training not stable" in place of their
numbers, and so do our tables and the claims scorecard.

An RL run (methods rloo and ppo, ``mmalign.train.rl``) writes its verdict into ``train_metrics.json``
(``stability``: ``stable`` and the ``reasons``, from the stated rule of ``mmalign.train.rl.stability_verdict``).
A variant with replicate seeds is not stable when any of its seed runs is not, and says how many were not.
"""

from __future__ import annotations

import json
from pathlib import Path

NOT_STABLE = "policy training not stable"


def _verdicts(train_metrics_paths) -> dict[str, dict]:
    """run -> its stability verdict (a run that recorded none counts as stable)."""
    verdicts = {}
    for path in map(Path, train_metrics_paths):
        metrics = json.loads(path.read_text())
        verdicts[metrics["variant"]] = metrics.get("stability") or {"stable": True}
    return verdicts


def _failed_seeds(groups: dict[str, list[str]] | None, failed: set[str], known: set[str]):
    """(group, its seed runs that are not stable, all its runs) for each replicated variant with a verdict."""
    for group, runs in (groups or {}).items():
        if any(r in known for r in runs):
            yield group, [r for r in runs if r in failed], runs


def read_stability(train_metrics_paths, groups: dict[str, list[str]] | None = None) -> dict[str, str]:
    """variant (or replicated group) -> why it is not stable, for every run that is not; stable runs are absent."""
    verdicts = _verdicts(train_metrics_paths)
    unstable = {
        run: f"{NOT_STABLE} ({'; '.join(v.get('reasons') or ['no reason recorded'])})"
        for run, v in verdicts.items()
        if not v.get("stable", True)
    }
    for group, failed, runs in _failed_seeds(groups, set(unstable), set(verdicts)):
        if failed:
            unstable[group] = f"{NOT_STABLE} ({len(failed)} of {len(runs)} seeds)"
    return unstable


def stable_runs(train_metrics_paths, groups: dict[str, list[str]] | None = None) -> dict[str, bool]:
    """run (and replicated group) -> whether it trained stably, for every RL run the study has."""
    stable = {run: bool(v.get("stable", True)) for run, v in _verdicts(train_metrics_paths).items()}
    failed = {run for run, ok in stable.items() if not ok}
    for group, failed_seeds, _ in _failed_seeds(groups, failed, set(stable)):
        stable[group] = not failed_seeds
    return stable
