"""Aggregation into the one tidy table every table, figure and claim is made from: results/tables/metrics.csv."""

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
