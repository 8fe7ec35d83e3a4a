"""Snakemake adapter: all metrics.json -> results/tables/metrics.csv."""

from mmalign.runlog import to_file

to_file(snakemake.log[0])  # noqa: F821

from mmalign.report.metrics import aggregate  # noqa: E402

aggregate(list(snakemake.input), snakemake.output[0])  # noqa: F821
