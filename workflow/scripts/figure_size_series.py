"""Snakemake adapter: Fig. 7 (metrics against preference-set size) and its numbers."""

from mmalign.runlog import to_file

to_file(snakemake.log[0])

from mmalign.report.figures import plot_size_series

frame = plot_size_series(snakemake.input[0], snakemake.params.series, snakemake.output.png, snakemake.output.svg)
frame.to_csv(snakemake.output.csv, index=False)
