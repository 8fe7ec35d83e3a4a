"""Snakemake adapter: the claims scorecard from metrics.csv."""

import logging

from mmalign.runlog import to_file

to_file(snakemake.log[0])

from mmalign.report.claims import write_scorecard

card = write_scorecard(
    snakemake.input.metrics,
    snakemake.input.claims,
    snakemake.params.columns,
    snakemake.params.study,
    snakemake.output.csv,
    snakemake.output.md,
    snakemake.input.published,
)
logging.info("verdicts: %s", card["verdict"].value_counts().to_dict())
