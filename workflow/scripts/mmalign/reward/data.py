"""A pair table as reward-model data: a held-out split by image, and the rows a reward model can learn from.

The split is by image, not by pair: several pairs of a source share one image (POVID's, VLFeedback's), and an RM
that saw an image's pairs in training would be judged on held-out pairs of the same image, so its held-out
accuracy would overstate how it ranks answers about images it has not seen.

A pair whose chosen and rejected answers are the same text carries no preference: the Bradley-Terry loss of a
tie is log 2 whatever the model does, and pairwise accuracy would count it wrong whatever the model does. Such
pairs are dropped and counted (``identical_answers``), never scored; so are pairs with an empty answer.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from mmalign.schema import Manifest, empty_text_reason

log = logging.getLogger(__name__)

IDENTICAL = "identical_answers"


def split_by_image(table: pd.DataFrame, heldout_share: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, heldout): whole images are drawn in a seeded order into held-out until it holds at least
    ``heldout_share`` of the rows; no image is on both sides. The same seed gives the same split."""
    if not 0 <= heldout_share < 1:
        raise ValueError(f"heldout_share must be in [0, 1), got {heldout_share}")
    images = table["image"].drop_duplicates().to_numpy()
    order = np.random.default_rng(seed).permutation(len(images))
    sizes = table.groupby("image", sort=False).size()
    wanted = heldout_share * len(table)
    heldout: set[str] = set()
    count = 0
    for index in order:
        if count >= wanted:
            break
        image = images[index]
        heldout.add(image)
        count += int(sizes[image])
    mask = table["image"].isin(heldout)
    train, held = table[~mask], table[mask]
    if len(train) == 0:
        raise ValueError(f"a held-out share of {heldout_share} over {len(images)} images leaves no training pair")
    return train, held


def reward_rows(table: pd.DataFrame, source: str = "reward") -> tuple[list[dict], Manifest]:
    """The pairs an RM can learn from and be scored on, and the counts of those dropped (with reasons)."""
    manifest = Manifest(source=source)
    rows = []
    for row in table.itertuples():
        manifest.rows_read += 1
        reason = empty_text_reason(row.prompt, row.chosen, row.rejected)
        if reason is None and row.chosen.strip() == row.rejected.strip():
            reason = IDENTICAL
        if reason:
            manifest.drop(reason)
            continue
        rows.append(
            {"id": row.id, "image": row.image, "prompt": row.prompt, "chosen": row.chosen, "rejected": row.rejected}
        )
    manifest.rows_kept = len(rows)
    if manifest.dropped:
        log.info("%s: %d of %d pairs dropped: %s", source, manifest.rows_read - len(rows), len(table), manifest.dropped)
    return rows, manifest
