"""Aggregation into the one tidy table every table and figure is made from, and the figures."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

METRIC_COLUMNS = ["variant", "benchmark", "kind", "subset", "metric", "value"]


def aggregate(metric_files: list[str | Path], out_csv: str | Path) -> pd.DataFrame:
    """results/tables/metrics.csv: one row per variant x benchmark x subset x metric."""
    rows = []
    for path in metric_files:
        result = json.loads(Path(path).read_text())
        for row in result["metrics"]:
            rows.append({"variant": result["variant"], "benchmark": result["benchmark"], "kind": result["kind"], **row})
    frame = pd.DataFrame(rows, columns=METRIC_COLUMNS).sort_values(["benchmark", "variant", "subset", "metric"])
    Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out_csv, index=False)
    return frame


# One style for every figure of the report: the base model is always grey and dashed where it is a reference,
# series take the colour-blind-safe Tableau 10 cycle, and every figure is written as PNG and SVG.
BASE_COLOUR = "0.45"
PAPER_COLOUR = "0.15"


def style():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "figure.dpi": 120, "savefig.dpi": 150, "savefig.bbox": "tight", "font.size": 10, "axes.titlesize": 10,
        "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8, "legend.fontsize": 8,
        "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
        "axes.prop_cycle": matplotlib.cycler(color=plt.get_cmap("tab10").colors), "svg.fonttype": "none",
    })  # fmt: skip
    return plt


def save(fig, out_png, out_svg) -> None:
    """Write one figure as PNG and SVG (same content) and free it."""
    import matplotlib.pyplot as plt

    for path in (out_png, out_svg):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    plt.close(fig)


def plot_pope(metrics_csv: str | Path, benchmark: str, metric: str, out_png: str | Path, out_svg: str | Path) -> None:
    """Grouped bars: one group per POPE split, one bar per variant (base first)."""
    plt = style()
    frame = pd.read_csv(metrics_csv)
    frame = frame[(frame.benchmark == benchmark) & (frame.metric == metric)]
    if frame.empty:
        raise ValueError(f"metrics.csv has no {metric!r} rows for benchmark {benchmark!r}")
    table = frame.pivot_table(index="subset", columns="variant", values="value")
    order = [s for s in ["random", "popular", "adversarial", "all"] if s in table.index]
    variants = ["base"] + sorted(v for v in table.columns if v != "base")
    table = table.loc[order, [v for v in variants if v in table.columns]]
    fig, ax = plt.subplots(figsize=(2.6 + 1.4 * len(order), 3.4))
    width = 0.8 / len(table.columns)
    for i, variant in enumerate(table.columns):
        xs = [k + (i - (len(table.columns) - 1) / 2) * width for k in range(len(order))]
        bars = ax.bar(xs, table[variant], width, label=variant, color=BASE_COLOUR if variant == "base" else None)
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
    ax.set_xticks(range(len(order)), [s if s != "all" else "mean" for s in order])
    low = max(0.0, table.min().min() - 0.1)
    ax.set_ylim(low, min(1.0, table.max().max() + 0.06) if metric != "unparsed" else None)
    ax.set_ylabel(f"POPE {metric}")
    ax.set_title(f"{benchmark}: base model vs aligned variants")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    save(fig, out_png, out_svg)


def non_similar_share(stats: list[dict], n_iterations: int) -> list[float]:
    """Fig. 10: per iteration i, the % of examples whose BDHS answer was dissimilar (cosine < eps_s) at some
    iteration <= i. The unguided last iteration is accepted regardless, but counts here only if dissimilar."""
    shares = []
    for i in range(1, n_iterations + 1):
        hits = sum(any(s < rec["eps_s"] for s in rec["similarities"][:i]) for rec in stats)
        shares.append(100.0 * hits / len(stats) if stats else float("nan"))
    return shares


def plot_bdhs_iterations(stats_files: list[str | Path], labels: list[str], out_png, out_svg, n_iterations: int = 5) -> None:
    plt = style()
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    xs = list(range(1, n_iterations + 1))
    for path, label in zip(stats_files, labels):
        stats = [json.loads(line) for line in open(path) if line.strip()]
        ax.plot(xs, non_similar_share(stats, n_iterations), marker="o", label=label)
    ax.set_xticks(xs)
    ax.set_xlabel("BDHS iteration")
    ax.set_ylabel("% non-similar responses")
    ax.set_title("Fig. 10: BDHS answers below the similarity threshold")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    save(fig, out_png, out_svg)
