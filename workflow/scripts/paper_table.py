"""Snakemake adapter: one of the paper's tables from metrics.csv (markdown + CSV) and its chart."""

import logging

from mmalign.runlog import to_file

to_file(snakemake.log[0])

from mmalign.report.figures import plot_table
from mmalign.report.stability import read_stability
from mmalign.report.tables import write_table

published = list(snakemake.input.published)  # empty unless report.compare_with_paper
published = published[0] if published else None
name, table, columns = snakemake.wildcards.table, snakemake.params.table, snakemake.params.columns
unstable = read_stability(snakemake.input.stability, dict(snakemake.params.replicates))  # RL runs shown as such
write_table(
    snakemake.input.metrics, name, table, columns, snakemake.output.csv, snakemake.output.md, published, unstable
)
drawn = plot_table(
    snakemake.input.metrics, name, table, columns, snakemake.output.png, snakemake.output.svg, published, unstable
)
logging.info("columns with numbers in this study: %s", drawn or "none")
