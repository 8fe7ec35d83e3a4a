"""Snakemake adapter: the claims scorecard from metrics.csv, each comparison on its paired interval."""

import logging
from pathlib import Path

from mmalign.runlog import to_file

to_file(snakemake.log[0])

from mmalign.report.claims import write_scorecard
from mmalign.report.metrics import Evaluations
from mmalign.report.uncertainty import Settings

card = write_scorecard(
    snakemake.input.metrics,
    snakemake.input.claims,
    snakemake.params.columns,
    snakemake.params.study,
    snakemake.output.csv,
    snakemake.output.md,
    snakemake.input.published,
    evals=Evaluations(snakemake.input.eval_metrics, {Path(p).parent.name: p for p in snakemake.input.benchmark_items}),
    groups=dict(snakemake.params.replicates),
    settings=Settings.from_config(snakemake.params.uncertainty),
    out_comparisons=snakemake.output.comparisons,
    reward_accuracy_paths=list(snakemake.input.reward_accuracies),  # Table 7's cells (claim 17)
    stability_paths=list(snakemake.input.stability),  # the RL runs' stability verdicts (claim 18)
)
logging.info("verdicts: %s", card["verdict"].value_counts().to_dict())
