"""Snakemake adapter: the POPE figure from metrics.csv."""

from mmalign.runlog import to_file

to_file(snakemake.log[0])

from mmalign.report.figures import plot_pope

figure = snakemake.params.figure
plot_pope(
    snakemake.input[0],
    figure["benchmark"],
    figure.get("metric", "accuracy"),
    snakemake.output.png,
    snakemake.output.svg,
)
