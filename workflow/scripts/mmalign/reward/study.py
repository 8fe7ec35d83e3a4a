"""The reward models of a study (config ``reward_models``, rules in workflow/rules/reward.smk): training on the
union of a model's train splits (``mmalign.reward.splits``), and the held-out accuracy of each (model, pair set)
cell of Table 7."""

from __future__ import annotations

import json
import logging
from dataclasses import fields
from pathlib import Path

import pandas as pd

from mmalign.schema import read_pairs, write_json, write_pairs

log = logging.getLogger(__name__)


def reward_settings(spec: dict):
    """A ``reward_models.<name>`` entry as ``RewardSettings`` (``pairsets`` is the rule's business, not the
    trainer's); the trainer splits nothing itself: the study's split is made once per pair set (rule reward_split,
    ``mmalign.reward.splits``)."""
    from .train import RewardSettings

    known = {f.name for f in fields(RewardSettings)} - {"heldout_share"}
    unknown = sorted(set(spec) - known - {"pairsets"})
    if unknown:
        raise ValueError(f"reward model settings: unknown keys {unknown} (known: {sorted(known)})")
    return RewardSettings(**{k: v for k, v in spec.items() if k in known}, heldout_share=0.0)


def union_of_splits(train_paths: dict[str, str | Path], out_path: Path) -> Path:
    """The train splits of several pair sets as one table (ids prefixed by their set, to stay unique)."""
    frames = []
    for pairset, path in train_paths.items():
        frame = read_pairs(path)
        frame["id"] = pairset + "/" + frame["id"].astype(str)
        frames.append(frame)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_pairs(pd.concat(frames, ignore_index=True).to_dict("records"), out_path)
    return out_path


def train_study_reward_model(
    model_dir, train_paths: dict[str, str | Path], out_dir, spec: dict, use_cpu: bool, compute: dict | None = None
) -> dict:
    """Train one ``reward_models`` entry on the union of its pair sets' train splits (``train_paths``: pair set
    -> train split); the metrics name the sets it trained on (Table 7's diagonal)."""
    from .train import train_reward_model

    out_dir = Path(out_dir)
    table = union_of_splits(train_paths, out_dir / "train_pairs.parquet")
    try:
        metrics = train_reward_model(model_dir, table, out_dir, reward_settings(spec), use_cpu, compute)
    finally:
        table.unlink(missing_ok=True)  # a copy of the splits: not an output
    return {"trained_on": list(train_paths), **metrics}


def evaluate_heldout(
    model_dir, adapter_dir, heldout_paths: dict[str, str | Path], reward_model: str, trained_on: list[str], out_dir,
    batch_size: int = 8, compute: dict | None = None,
) -> dict[str, dict]:  # fmt: skip
    """One row of Table 7: the reward model (loaded once) on each held-out split (``heldout_paths``: pair set ->
    split); writes ``<out_dir>/<pair set>.json`` (accuracy and counts) and ``.jsonl`` (each pair's scores)."""
    from .accuracy import reward_accuracy
    from .model import load_reward_model

    model, processor = load_reward_model(model_dir, adapter_dir, compute)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries = {}
    for pairset, path in heldout_paths.items():
        result = reward_accuracy(model, processor, read_pairs(path), batch_size, per_pair=True)
        with open(out_dir / f"{pairset}.jsonl", "w") as fh:
            for row in result.pop("per_pair"):
                fh.write(json.dumps(row) + "\n")
        summaries[pairset] = {"reward_model": reward_model, "pairset": pairset, "trained_on": trained_on, **result}
        write_json(summaries[pairset], out_dir / f"{pairset}.json")
        log.info("%s on held-out %s: accuracy %.3f over %d pairs (%d ties, %d dropped as identical)", reward_model,
                 pairset, result["accuracy"], result["pairs"], result["ties"], result["dropped_identical"])  # fmt: skip
    return summaries
