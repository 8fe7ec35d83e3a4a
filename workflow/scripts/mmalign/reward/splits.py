"""Each pair set a reward model reads, split once into train and held-out, disjoint by image (rule reward_split).

Why the split is its own step: Table 7 scores every reward model on the held-out split of every pair set, so the
split of a set must be the same for all of them (a model trained on POVID + RLHF-V must not have trained on
POVID's held-out images). One split per pair set, seeded, written once; it needs pandas alone.
"""

from __future__ import annotations

import logging

from mmalign.schema import read_pairs, write_json, write_pairs

from .data import split_by_image

log = logging.getLogger(__name__)

DEFAULT_HELDOUT_SHARE = 0.1  # the paper: "a small validation set split from the original dataset"


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
