"""Snakemake adapter: all metrics.json -> results/tables/metrics.csv."""

from mmalign.runlog import to_file

to_file(snakemake.log[0])

from mmalign.report.metrics import aggregate

aggregate(list(snakemake.input), snakemake.output[0])
