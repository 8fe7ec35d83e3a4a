"""Table 7: how well each reward model ranks the held-out pairs of each pair set, with intervals.

Every cell is the accuracy of one reward model on one pair set's held-out split (rule ``eval_reward_model``):
the share of pairs whose chosen answer it scores strictly above the rejected one. Its interval is a seeded
percentile bootstrap over those pairs (``report.uncertainty``: B, level, seed, min_items, as for every other
number). A reward model's *generalisation* is its mean accuracy over the held-out splits of the sets it was not
trained on (the off-diagonal cells of its row), the quantity claim 17 compares; its interval resamples the pairs
within each of those splits.

Config (``report.reward_table``)::

    reward_table:
      name: table7
      title: "Table 7: reward-model accuracy on held-out splits"
      caption: ...
      rows: {"POVID": rm_povid, "POVID + RLHF-V": rm_povid_rlhfv}     # row label -> reward_models entry
      columns: {"POVID": povid, "RLHF-V": rlhfv}                         # column label -> pair set

The paper's numbers (workflow/resources/paper_results.csv, ``table`` = the table's name, ``row`` = the reward
model, ``column`` = ``rm:<pair set>`` or ``generalisation``) are shown beside ours with ``report.compare_with_paper``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .style import save, style
from .tables import published_numbers, read_published
from .uncertainty import Interval, Settings, resample_counts, rng_for

GENERALISATION = "generalisation"  # the claims' name for a reward model's mean off-diagonal accuracy
RM_COLUMN_PREFIX = "rm:"  # a claims column "rm:<pair set>" is a reward model's accuracy on that held-out split


class RewardAccuracies:
    """Each reward model's per-pair verdicts on each held-out split (``results/reward_models/<rm>/heldout``)."""

    def __init__(self, correct: dict[tuple[str, str], np.ndarray], trained_on: dict[str, list[str]]):
        self.correct = correct  # (rm, pair set) -> 1.0 / 0.0 per held-out pair (a tie is 0)
        self.trained_on = trained_on  # rm -> the pair sets it trained on

    @classmethod
    def read(cls, accuracy_paths) -> RewardAccuracies:
        correct, trained_on = {}, {}
        for path in map(Path, accuracy_paths):
            summary = json.loads(path.read_text())
            rows = [json.loads(line) for line in path.with_suffix(".jsonl").read_text().splitlines() if line]
            correct[(summary["reward_model"], summary["pairset"])] = np.array([float(r["correct"]) for r in rows])
            trained_on[summary["reward_model"]] = list(summary["trained_on"])
        return cls(correct, trained_on)

    def has(self, rm: str) -> bool:
        return rm in self.trained_on

    def heldout_sets(self, rm: str) -> list[str]:
        return sorted(p for r, p in self.correct if r == rm)

    def parts(self, rm: str, column: str) -> list[np.ndarray]:
        """The held-out splits a number averages: one set, or the generalisation's off-diagonal sets."""
        if column == GENERALISATION:
            return [self.correct[(rm, p)] for p in self.heldout_sets(rm) if p not in self.trained_on[rm]]
        key = (rm, column.removeprefix(RM_COLUMN_PREFIX))
        return [self.correct[key]] if key in self.correct else []

    def value(self, rm: str, column: str) -> float:
        parts = [p for p in self.parts(rm, column) if len(p)] if self.has(rm) else []
        return float(np.mean([p.mean() for p in parts])) if parts else math.nan

    def interval(self, rm: str, column: str, settings: Settings) -> Interval:
        """The number with its percentile bootstrap interval (pairs resampled within each held-out split)."""
        value, items = self.value(rm, column), self._items(rm, column)
        stats = self._draws([(rm, column)], settings)
        if stats is None:
            note = f"{items} pairs; a split has < report.uncertainty.min_items {settings.min_items}"
            return Interval(value, items=items, note=note if items else "not evaluated")
        return _percentile_interval(value, stats[0], settings, items)

    def difference(self, left: str, right: str, column: str, settings: Settings) -> Interval:
        """left - right: two reward models on the same held-out splits (or the generalisation of each), resampled
        independently (each model's own pairs; cells of different rows are separate evaluations)."""
        value = self.value(left, column) - self.value(right, column)
        stats = self._draws([(left, column), (right, column)], settings)
        if stats is None:
            return Interval(value, note="too few pairs")
        return _percentile_interval(value, stats[0] - stats[1], settings, self._items(left, column))

    def _items(self, rm: str, column: str) -> int:
        return int(sum(len(p) for p in self.parts(rm, column))) if self.has(rm) else 0

    def _draws(self, cells: list[tuple[str, str]], settings: Settings) -> list[np.ndarray] | None:
        draws = []
        for rm, column in cells:
            parts = self.parts(rm, column) if self.has(rm) else []
            if not parts or any(len(p) < settings.min_items for p in parts):
                return None
            per_part = []
            for i, part in enumerate(parts):
                rng = rng_for(settings, "reward", rm, column, str(i))
                counts = resample_counts(np.zeros(len(part)), settings.bootstrap, rng)
                per_part.append(counts @ part / len(part))
            draws.append(np.mean(per_part, axis=0))
        return draws


def _percentile_interval(value: float, stats: np.ndarray, settings: Settings, items: int) -> Interval:
    tail = (1 - settings.level) / 2
    low, high = np.quantile(stats, [tail, 1 - tail])
    return Interval(value, float(low), float(high), items)


def build_reward_table(
    accuracies: RewardAccuracies, name: str, table: dict, settings: Settings, published: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per reward model: its accuracy (and bounds) per held-out column, its generalisation, and with
    published numbers the paper's accuracy beside each."""
    paper = published_numbers(published, name)
    records = []
    for label, rm in table["rows"].items():
        record = {"row": label, "reward_model": rm, "trained_on": " + ".join(accuracies.trained_on.get(rm, []))}
        for column_label, pairset in [*table["columns"].items(), (GENERALISATION, GENERALISATION)]:
            key = pairset if pairset == GENERALISATION else RM_COLUMN_PREFIX + pairset
            number = accuracies.interval(rm, key, settings)
            record[column_label] = number.value
            record[f"{column_label} (low)"], record[f"{column_label} (high)"] = number.low, number.high
            if published is not None and pairset != GENERALISATION:
                record[f"{column_label} (paper)"] = paper.get((rm, key), math.nan)
        records.append(record)
    return pd.DataFrame.from_records(records).set_index("row")


def _cell(value: float, low: float, high: float) -> str:
    if math.isnan(value):
        return "not run"
    if math.isnan(low):
        return f"{value:.2f}†"
    return f"{value:.2f} ± {(high - low) / 2:.2f}"


def markdown_reward_table(frame: pd.DataFrame, table: dict, with_paper: bool) -> str:
    columns = [*table["columns"], GENERALISATION]
    header = ["reward model (trained on)", *[f"held-out {c}" for c in table["columns"]], "generalisation"]
    lines = [f"### {table.get('title', 'Table 7')}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, row in frame.iterrows():
        cells = [label]
        for column in columns:
            cell = _cell(row[column], row[f"{column} (low)"], row[f"{column} (high)"])
            paper = row.get(f"{column} (paper)", math.nan) if with_paper else math.nan
            if with_paper and column != GENERALISATION:
                cell += " (paper –)" if math.isnan(paper) else f" (paper {paper:.2f})"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Accuracy: the share of held-out pairs whose chosen answer the reward model scores strictly above the "
        "rejected one (a tie counts as wrong; pairs with identical answers are dropped and counted in the "
        "held-out JSON); 0.5 is chance. `value ± half-width` of the item-bootstrap interval; `†` = no interval (a "
        "split with too few pairs). Generalisation: the mean accuracy on the held-out splits of the sets the model "
        "did not train on. Held-out splits are disjoint from every training split by image.",
    ]
    return "\n".join(lines) + "\n"


def plot_reward_table(frame: pd.DataFrame, table: dict, out_png, out_svg) -> None:
    """A heatmap of the accuracy matrix, chance (0.5) white, cells annotated with value and interval."""
    plt = style()
    columns = list(table["columns"])
    values = frame[columns].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(columns), 0.9 + 0.5 * len(frame)))
    image = ax.imshow(np.ma.masked_invalid(values), cmap="RdBu", vmin=0.0, vmax=1.0, aspect="auto")
    ax.grid(False)
    ax.set_xticks(range(len(columns)), [f"held-out {c}" for c in columns])
    ax.set_yticks(range(len(frame)), list(frame.index))
    for i, (_, row) in enumerate(frame.iterrows()):
        for j, column in enumerate(columns):
            text = _cell(row[column], row[f"{column} (low)"], row[f"{column} (high)"])
            ax.text(j, i, text, ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=ax, label="accuracy (0.5 = chance)")
    ax.set_title(table.get("title", "Table 7"))
    save(fig, out_png, out_svg)


def write_reward_table(
    accuracy_paths, name: str, table: dict, settings: Settings, out_csv, out_md, out_png, out_svg, published_csv=None
) -> pd.DataFrame:
    accuracies = RewardAccuracies.read(accuracy_paths)
    published = read_published(published_csv) if published_csv else None
    frame = build_reward_table(accuracies, name, table, settings, published)
    frame.to_csv(out_csv)
    Path(out_md).write_text(markdown_reward_table(frame, table, published is not None))
    plot_reward_table(frame, table, out_png, out_svg)
    return frame
