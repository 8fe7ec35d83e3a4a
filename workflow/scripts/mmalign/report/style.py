"""The one style of every figure of the report."""

from __future__ import annotations

from pathlib import Path

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
