"""Snakemake adapter: Fig. 7 (metrics against preference-set size) and its numbers."""

from mmalign.runlog import to_file

to_file(snakemake.log[0])  # noqa: F821

from mmalign.report.figures import plot_size_series  # noqa: E402

frame = plot_size_series(snakemake.input[0], snakemake.params.series, snakemake.output.png, snakemake.output.svg)  # noqa: F821
frame.to_csv(snakemake.output.csv, index=False)  # noqa: F821
