"""Every figure of the report, in one style (``style``): POPE by split, a chart per paper table (base model as the
reference line), Fig. 7 (metrics against preference-set size), Fig. 9 (the diffusion beta schedule of BDHS_noise)
and Fig. 10 (BDHS iterations). Every number comes from metrics.csv (via ``tables``) or, for Fig. 9 and 10, from
what BDHS itself uses and records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from .style import BASE_COLOUR, PAPER_COLOUR, save, style
from .tables import Metrics, published_numbers, read_published


def _axis_label(label: str, column: dict) -> str:
    arrow = "↓" if column.get("lower_is_better") else "↑"
    return f"{label} {arrow}"


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=8, color=BASE_COLOUR, wrap=True)
    ax.axis("off")


def plot_table(
    metrics_csv,
    table_name: str,
    table: dict,
    columns: dict[str, dict],
    out_png,
    out_svg,
    published_csv=None,
    unstable: dict[str, str] | None = None,
) -> list[str]:
    """One panel per column that has a number in this study: a dot per aligned row joined to the base model's
    dashed line (so the segment is the change from base), the row's interval as a thin whisker under it and the
    base model's as a grey band, rows not run marked 'not run' (no dot, never a zero);
    with published numbers, the paper's value as a black diamond. Returns the columns drawn."""
    plt = style()
    metrics = Metrics.read(metrics_csv, unstable)  # a run that did not train stably gets no dot
    paper = published_numbers(read_published(published_csv), table_name) if published_csv else {}
    rows = [(label, v) for label, v in table["rows"].items() if v != "base"]
    drawn = [
        c for c, spec in columns.items() if any(not math.isnan(metrics.value(v, spec)) for v in table["rows"].values())
    ]
    n = max(1, len(drawn))
    ncols = min(n, 4)
    nrows = math.ceil(n / ncols)
    height = 0.8 + 0.28 * max(len(rows), 2)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.2 + 2.6 * ncols, height * nrows), sharey=True, squeeze=False)
    labels = [label for label, _ in rows]
    if not drawn:
        _empty(axes[0][0], f"{table.get('title', table_name)}: no number in this study yet\n(variants not run)")
    for i, column_label in enumerate(drawn):
        ax = axes[i // ncols][i % ncols]
        spec = columns[column_label]
        ys = list(range(len(rows)))
        values = [metrics.value(v, spec) for _, v in rows]
        finite = [x for x in values if not math.isnan(x)]
        base = metrics.value("base", spec)
        for y in ys:  # a dot per row, joined to the base line: the gain or loss is the segment's length
            if not math.isnan(values[y]):
                if not math.isnan(base):
                    ax.hlines(y, base, values[y], color=f"C{y % 10}", linewidth=2.5, alpha=0.7)
                ax.plot([values[y]], [y], marker="o", color=f"C{y % 10}", markersize=6)
                found = metrics.interval(rows[y][1], spec)
                if found.measured:  # the item (and seed) interval as a whisker
                    ax.plot([found.low, found.high], [y + 0.18] * 2, color=f"C{y % 10}", linewidth=1.0)
        theirs = [paper.get((v, column_label), math.nan) for _, v in rows]
        first_paper = next((y for y in ys if not math.isnan(theirs[y])), None)
        paper_base = paper.get(("base", column_label), math.nan)
        reference = [x for x in (*finite, base, paper_base, *theirs) if not math.isnan(x)]
        low = min(reference, default=0.0)
        high = max(reference, default=1.0)
        left = low - 0.3 * (high - low or abs(high) or 1.0)  # room for the 'not run' marks
        for y, x, p in zip(ys, values, theirs):
            if math.isnan(x):  # in axes coordinates: at the panel's left edge whatever the data range
                ax.text(
                    0.01,
                    y,
                    "not run"
                    if not metrics.ran(rows[y][1])
                    else "not stable"
                    if rows[y][1] in metrics.unstable
                    else "n/a",
                    va="center",
                    fontsize=7,
                    color=BASE_COLOUR,
                    transform=ax.get_yaxis_transform(),
                )
            else:
                ax.annotate(f"{x:.2f}", (x, y), xytext=(0, 5), textcoords="offset points", ha="center", fontsize=7)
            if not math.isnan(p):
                ax.plot(
                    [p],
                    [y],
                    marker="D",
                    color=PAPER_COLOUR,
                    markersize=4,
                    linestyle="none",
                    label="paper" if y == first_paper else None,
                )
        if not math.isnan(base):
            ax.axvline(base, color=BASE_COLOUR, linestyle="--", linewidth=1.2, label=f"base {base:.2f}")
            base_interval = metrics.interval("base", spec)
            if base_interval.measured:
                ax.axvspan(base_interval.low, base_interval.high, color=BASE_COLOUR, alpha=0.12, linewidth=0)
        if not math.isnan(paper_base):
            ax.axvline(
                paper_base, color=PAPER_COLOUR, linestyle=":", linewidth=1.2, label=f"paper base {paper_base:.2f}"
            )
        ax.set_xlim(left, high + 0.2 * (high - low or abs(high) or 1.0))
        ax.set_title(_axis_label(column_label, spec))
        ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=2)
    for j in range(len(drawn), nrows * ncols):
        if drawn:
            axes[j // ncols][j % ncols].set_visible(False)
    for r in range(nrows):
        axes[r][0].set_yticks(range(len(labels)), labels)
    axes[0][0].set_ylim(len(labels) - 0.5, -0.5)  # first row on top, as in the paper (shared by every panel)
    fig.suptitle(table.get("title", table_name), fontsize=10)
    fig.tight_layout()
    save(fig, out_png, out_svg)
    return drawn


def size_series_frame(metrics: Metrics, series: dict) -> pd.DataFrame:
    """Fig. 7's numbers: panel, dataset, size, variant, value (NaN where the variant was not run)."""
    records = []
    for panel, spec in series["panels"].items():
        for label, dataset in series["datasets"].items():
            for size in series["sizes"]:
                variant = f"dpo_{dataset}_n{size}"
                records.append(
                    {
                        "panel": panel,
                        "dataset": label,
                        "size": size,
                        "variant": variant,
                        "value": metrics.value(variant, spec),
                    }
                )
    return pd.DataFrame(records, columns=["panel", "dataset", "size", "variant", "value"])


def plot_size_series(metrics_csv, series: dict, out_png, out_svg) -> pd.DataFrame:
    """Fig. 7: one panel per metric, one line per dataset over the preference-set sizes, the base model dashed.
    A size that was not run is a gap in its line; a panel with no number says so."""
    plt = style()
    metrics = Metrics.read(metrics_csv)
    frame = size_series_frame(metrics, series)
    panels = list(series["panels"])
    ncols = 2 if len(panels) > 1 else 1
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False)
    for i, panel in enumerate(panels):
        ax = axes[i // ncols][i % ncols]
        spec = series["panels"][panel]
        part = frame[frame.panel == panel]
        base = metrics.value("base", spec)
        if part.value.isna().all() and math.isnan(base):
            _empty(ax, f"{panel}: not measured in this study")
            ax.set_title(f"({chr(97 + i)}) {_axis_label(panel, spec)}")
            continue
        for k, (label, line) in enumerate(part.groupby("dataset", sort=False)):
            ax.plot(line["size"], line["value"], marker="o", markersize=4, color=f"C{k % 10}", label=label)
        if part.value.isna().all():
            ax.text(
                0.5,
                0.35,
                "no size-series variant run yet",
                ha="center",
                transform=ax.transAxes,
                fontsize=8,
                color=BASE_COLOUR,
            )
        if not math.isnan(base):
            ax.axhline(base, color=BASE_COLOUR, linestyle="--", linewidth=1.2, label="base model")
        ax.set_xticks(series["sizes"])
        ax.set_xlabel("preference pairs")
        ax.set_title(f"({chr(97 + i)}) {_axis_label(panel, spec)}")
        ax.legend(frameon=False)
    for j in range(len(panels), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    fig.suptitle("Fig. 7: effect of the preference-set size (DPO)", fontsize=10)
    fig.tight_layout()
    save(fig, out_png, out_svg)
    return frame


def plot_beta_schedule(schedule_csv, noise_levels: list[int], out_png, out_svg) -> None:
    """Fig. 9: beta_k of the diffusion forward process (left) and the share of the image signal kept after N
    steps, sqrt(alpha_bar_N) (right), with the noise levels N the configured BDHS_noise pair sets use."""
    plt = style()
    schedule = pd.read_csv(schedule_csv)
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.4, 3.0))
    left.plot(schedule["k"], schedule["beta"], color="C0")
    left.set_xlabel("diffusion step k")
    left.set_ylabel("β_k")
    left.set_title("β schedule (sigmoid, 1e-5 to 5e-3)")
    right.plot(schedule["k"], schedule["alpha_bar"] ** 0.5, color="C0")
    right.set_xlabel("noise steps N")
    right.set_ylabel("√ᾱ_N (image signal kept)")
    right.set_title("signal left after N steps (Eq. 9)")
    for k, n in enumerate(sorted(set(noise_levels))):
        kept = float(schedule.loc[schedule["k"] == n, "alpha_bar"].iloc[0]) ** 0.5
        for ax in (left, right):
            ax.axvline(
                n,
                color=f"C{(k + 1) % 10}",
                linestyle=":",
                linewidth=1.2,
                label=f"N = {n} (√ᾱ = {kept:.2f})" if ax is right else None,
            )
    if noise_levels:
        right.legend(frameon=False)
    fig.suptitle("Fig. 9: the diffusion noise schedule of BDHS_noise", fontsize=10)
    fig.tight_layout()
    save(fig, out_png, out_svg)


def plot_pope(metrics_csv: str | Path, benchmark: str, metric: str, out_png: str | Path, out_svg: str | Path) -> None:
    """Grouped bars: one group per POPE split, one bar per variant (base first), each with its interval as an
    error bar; a replicated variant is drawn once (its mean over seeds), not once per seed run."""
    plt = style()
    frame = pd.read_csv(metrics_csv)
    frame = frame[(frame.benchmark == benchmark) & (frame.metric == metric) & ~frame.variant.str.contains("/seed")]
    if frame.empty:
        raise ValueError(f"metrics.csv has no {metric!r} rows for benchmark {benchmark!r}")
    table = frame.pivot_table(index="subset", columns="variant", values="value")
    has_intervals = {"ci_low", "ci_high"} <= set(frame.columns)
    if has_intervals:
        lows = frame.pivot_table(index="subset", columns="variant", values="ci_low", dropna=False)
        highs = frame.pivot_table(index="subset", columns="variant", values="ci_high", dropna=False)
    order = [s for s in ["random", "popular", "adversarial", "all"] if s in table.index]
    variants = ["base"] + sorted(v for v in table.columns if v != "base")
    table = table.loc[order, [v for v in variants if v in table.columns]]
    fig, ax = plt.subplots(figsize=(2.6 + 1.4 * len(order), 3.4))
    width = 0.8 / len(table.columns)
    for i, variant in enumerate(table.columns):
        xs = [k + (i - (len(table.columns) - 1) / 2) * width for k in range(len(order))]
        errors = None
        if has_intervals and variant in lows.columns:  # asymmetric: value - low below, high - value above
            low_side = (table[variant] - lows[variant].reindex(order)).clip(lower=0).fillna(0)
            high_side = (highs[variant].reindex(order) - table[variant]).clip(lower=0).fillna(0)
            errors = [low_side.to_numpy(), high_side.to_numpy()]
        bars = ax.bar(
            xs, table[variant], width, yerr=errors, error_kw={"linewidth": 0.8, "capsize": 1.5},
            label=variant, color=BASE_COLOUR if variant == "base" else None,
        )  # fmt: skip
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


def plot_bdhs_iterations(
    stats_files: list[str | Path], labels: list[str], out_png, out_svg, n_iterations: int = 5
) -> None:
    plt = style()
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    xs = list(range(1, n_iterations + 1))
    for path, label in zip(stats_files, labels):
        stats = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        ax.plot(xs, non_similar_share(stats, n_iterations), marker="o", label=label)
    ax.set_xticks(xs)
    ax.set_xlabel("BDHS iteration")
    ax.set_ylabel("% non-similar responses")
    ax.set_title("Fig. 10: BDHS answers below the similarity threshold")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    save(fig, out_png, out_svg)
