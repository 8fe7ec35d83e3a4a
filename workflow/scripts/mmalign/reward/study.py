"""The reward models of a study (config ``reward_models``, rules in workflow/rules/reward.smk): held-out splits
shared by every model that reads a pair set, training on the union of a model's train splits, and the held-out
accuracy of each (model, pair set) cell of Table 7.

Why the split is its own step: Table 7 scores every reward model on the held-out split of every pair set, so the
split of a set must be the same for all of them (a model trained on POVID + RLHF-V must not have trained on
POVID's held-out images). One split per pair set, disjoint by image, seeded, written once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import fields
from pathlib import Path

import pandas as pd

from mmalign.schema import read_pairs, write_json, write_pairs

from .data import split_by_image
from .train import RewardSettings

log = logging.getLogger(__name__)

DEFAULT_HELDOUT_SHARE = 0.1  # the paper: "a small validation set split from the original dataset"


def reward_settings(spec: dict) -> RewardSettings:
    """A ``reward_models.<name>`` entry as settings (``pairsets`` is the rule's business, not the trainer's); the
    trainer splits nothing itself, since the study's split is made once per pair set (rule reward_split)."""
    known = {f.name for f in fields(RewardSettings)} - {"heldout_share"}
    unknown = sorted(set(spec) - known - {"pairsets"})
    if unknown:
        raise ValueError(f"reward model settings: unknown keys {unknown} (known: {sorted(known)})")
    return RewardSettings(**{k: v for k, v in spec.items() if k in known}, heldout_share=0.0)


def write_split(pairs_path, out_train, out_heldout, out_manifest, heldout_share: float, seed: int) -> dict:
    """Split one pair table by image into train and held-out tables, and say what went where."""
    table = read_pairs(pairs_path)
    train, heldout = split_by_image(table, heldout_share, seed)
    write_pairs(train.to_dict("records"), out_train)
    write_pairs(heldout.to_dict("records"), out_heldout)
    summary = {
        "pairs": len(table),
        "train": len(train),
        "heldout": len(heldout),
        "images": int(table["image"].nunique()),
        "heldout_images": int(heldout["image"].nunique()),
        "shared_images": len(set(train["image"]) & set(heldout["image"])),  # 0 by construction
        "heldout_share": heldout_share,
        "seed": seed,
    }
    write_json(summary, out_manifest)
    log.info("%s: %d train / %d held-out pairs, %d held-out images", pairs_path, len(train), len(heldout),
             summary["heldout_images"])  # fmt: skip
    return summary


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


def train_study_reward_model(model_dir, train_paths: dict[str, str | Path], out_dir, spec: dict, use_cpu: bool) -> dict:
    """Train one ``reward_models`` entry on the union of its pair sets' train splits (``train_paths``: pair set
    -> train split); the metrics name the sets it trained on (Table 7's diagonal)."""
    from .train import train_reward_model

    out_dir = Path(out_dir)
    table = union_of_splits(train_paths, out_dir / "train_pairs.parquet")
    try:
        metrics = train_reward_model(model_dir, table, out_dir, reward_settings(spec), use_cpu=use_cpu)
    finally:
        table.unlink(missing_ok=True)  # a copy of the splits: not an output
    return {"trained_on": list(train_paths), **metrics}


def evaluate_heldout(
    model_dir, adapter_dir, heldout_path, reward_model: str, pairset: str, trained_on: list[str], out_json, out_jsonl,
    batch_size: int = 8,
) -> dict:  # fmt: skip
    """One Table 7 cell: the reward model's accuracy on a held-out split, and each pair's two scores."""
    from .accuracy import reward_accuracy
    from .model import load_reward_model

    model, processor = load_reward_model(model_dir, adapter_dir)
    result = reward_accuracy(model, processor, read_pairs(heldout_path), batch_size, per_pair=True)
    per_pair = result.pop("per_pair")
    with open(out_jsonl, "w") as fh:
        for row in per_pair:
            fh.write(json.dumps(row) + "\n")
    summary = {"reward_model": reward_model, "pairset": pairset, "trained_on": trained_on, **result}
    write_json(summary, out_json)
    log.info("%s on held-out %s: accuracy %.3f over %d pairs (%d ties, %d dropped as identical)", reward_model,
             pairset, result["accuracy"], result["pairs"], result["ties"], result["dropped_identical"])  # fmt: skip
    return summary
