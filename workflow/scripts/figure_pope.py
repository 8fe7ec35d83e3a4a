"""Snakemake adapter: the POPE figure from metrics.csv."""

from mmalign.runlog import to_file

to_file(snakemake.log[0])  # noqa: F821

from mmalign.report.figures import plot_pope  # noqa: E402

figure = snakemake.params.figure  # noqa: F821
plot_pope(snakemake.input[0], figure["benchmark"], figure.get("metric", "accuracy"),  # noqa: F821
          snakemake.output.png, snakemake.output.svg)  # noqa: F821
