"""The on-disk contracts shared by every stage.

Every pair source, real or synthetic, ends in the same preference table; every benchmark, real or
synthetic, ends in the same item list. Downstream stages read only these, never a source's own format.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

# Columns of results/pairs/{pairset}/pairs.parquet, in order.
PAIR_COLUMNS = [
    "id",  # unique within the pair set
    "image",  # path of the image file (absolute, or relative to the working directory)
    "prompt",  # the user's text, without any image placeholder
    "chosen",  # preferred assistant answer
    "rejected",  # dispreferred assistant answer (external, e.g. POVID's corrupted answer)
    "rejected_policy",  # optional second rejected answer derived from the policy (Avg-DPO); "" if none
    "source",  # where the pair came from (adapter name)
    "meta",  # JSON string with source-specific details
]

# A builder that drops more than this share of what it read stops: that means a wrong file or image folder,
# not a few bad records (config ``pairsets.<name>.max_drop_rate``).
DEFAULT_MAX_DROP_RATE = 0.05

# Fields of a benchmark item (one JSON object per line in items.jsonl).
ITEM_FIELDS = ["id", "image", "question", "answer", "subset", "meta"]


@dataclass
class Manifest:
    """Counts of what a builder read, kept and dropped (with reasons); written next to its output."""

    source: str
    rows_read: int = 0
    rows_kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    extra: dict = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.dropped[reason] += 1

    @property
    def drop_rate(self) -> float:
        return 0.0 if self.rows_read == 0 else sum(self.dropped.values()) / self.rows_read

    def to_dict(self) -> dict:
        out = asdict(self)
        out["dropped"] = dict(sorted(self.dropped.items()))
        out["drop_rate"] = round(self.drop_rate, 6)
        return out

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def check_drop_rate(manifest: Manifest, max_drop_rate: float) -> None:
    if manifest.drop_rate > max_drop_rate:
        raise ValueError(
            f"pair source {manifest.source!r} dropped {manifest.drop_rate:.1%} of its rows "
            f"(bound {max_drop_rate:.1%}): {dict(manifest.dropped)}"
        )


def write_pairs(rows: Iterable[dict], path: str | Path) -> pd.DataFrame:
    """Write preference rows to parquet with exactly PAIR_COLUMNS (missing optional fields filled)."""
    records = []
    for row in rows:
        rec = {col: row.get(col, "") for col in PAIR_COLUMNS}
        if isinstance(rec["meta"], dict):
            rec["meta"] = json.dumps(rec["meta"], sort_keys=True)
        rec["rejected_policy"] = rec["rejected_policy"] or ""
        records.append(rec)
    frame = pd.DataFrame.from_records(records, columns=PAIR_COLUMNS).astype(str)
    if frame["id"].duplicated().any():
        dup = frame.loc[frame["id"].duplicated(), "id"].iloc[0]
        raise ValueError(f"duplicate pair id {dup!r}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return frame


def read_pairs(path: str | Path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    missing = [c for c in PAIR_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: not a pair table, missing columns {missing}")
    return frame


def write_items(items: Iterable[dict], path: str | Path) -> int:
    """Write benchmark items as JSON lines; returns the count."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w") as fh:
        for item in items:
            missing = [f for f in ITEM_FIELDS if f not in item]
            if missing:
                raise ValueError(f"benchmark item {item.get('id')!r} lacks {missing}")
            fh.write(json.dumps({f: item[f] for f in ITEM_FIELDS}, sort_keys=True) + "\n")
            n += 1
    return n


def read_jsonl(path: str | Path) -> list[dict]:
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_json(obj, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


# ------------------------------------------------------------------------- checks where pair data is used


def image_problem(path: str | Path) -> str | None:
    """None if the file exists and decodes in full, else the reason ('missing_image', 'bad_image')."""
    from PIL import Image

    if not Path(path).is_file():
        return "missing_image"
    try:
        with Image.open(path) as image:
            image.load()  # every pixel: ``verify()`` alone keeps a truncated JPEG
    except Exception:  # PIL raises many types for a corrupt file
        return "bad_image"
    return None


def empty_text_reason(prompt, chosen, rejected) -> str | None:
    """The drop reason of a pair with an empty (or whitespace-only) prompt, chosen or rejected answer."""
    for name, text in (("prompt", prompt), ("chosen", chosen), ("rejected", rejected)):
        if not isinstance(text, str) or not text.strip():
            return f"empty_{name}"
    return None


class PairTableError(ValueError):
    """A pair table that cannot be trained on as it is."""


def validate_pair_table(path: str | Path, rejected_columns: list[str] = ("rejected",), show: int = 5) -> int:
    """Check every row a training job will read, before its first step: the image decodes, the prompt and the
    chosen answer are not empty, and neither is any ``rejected_columns`` answer the run trains on. Raises
    PairTableError naming the table, the count and the first bad rows; returns the number of rows checked."""
    frame = read_pairs(path)
    bad: list[tuple[str, str]] = []
    images: dict[str, str | None] = {}
    for row in frame.itertuples():
        texts = [getattr(row, column) for column in rejected_columns] or ["(made during training)"]
        reason = next((r for text in texts if (r := empty_text_reason(row.prompt, row.chosen, text))), None)
        if reason == "empty_rejected" and len(rejected_columns) == 2 and not row.rejected_policy:
            reason = "empty_rejected_policy"
        if reason is None:
            if row.image not in images:
                images[row.image] = image_problem(row.image)
            reason = images[row.image]
        if reason:
            bad.append((row.id, reason))
    if bad:
        first = ", ".join(f"{pair_id} ({reason})" for pair_id, reason in bad[:show])
        raise PairTableError(f"{path}: {len(bad)} of {len(frame)} pairs cannot be trained on; first: {first}")
    return len(frame)
