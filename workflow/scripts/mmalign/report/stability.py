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


def read_stability(train_metrics_paths, groups: dict[str, list[str]] | None = None) -> dict[str, str]:
    """variant (or replicated group) -> why it is not stable, for every run that is not; stable runs are absent."""
    verdicts: dict[str, dict] = {}
    for path in map(Path, train_metrics_paths):
        metrics = json.loads(path.read_text())
        verdicts[metrics["variant"]] = metrics.get("stability") or {"stable": True}
    unstable = {
        run: f"{NOT_STABLE} ({'; '.join(v.get('reasons') or ['no reason recorded'])})"
        for run, v in verdicts.items()
        if not v.get("stable", True)
    }
    for group, runs in (groups or {}).items():
        failed = [r for r in runs if r in unstable]
        if failed:
            unstable[group] = f"{NOT_STABLE} ({len(failed)} of {len(runs)} seeds)"
    return unstable


def stable_runs(train_metrics_paths) -> dict[str, bool]:
    """run -> whether it trained stably (every RL run the study has)."""
    return {
        (m := json.loads(Path(p).read_text()))["variant"]: bool((m.get("stability") or {}).get("stable", True))
        for p in train_metrics_paths
    }
