"""Snakemake adapter: the BDHS iteration figure (the paper's Fig. 10) from the recorded statistics."""

from mmalign.runlog import to_file

to_file(snakemake.log[0])

from mmalign.report.figures import plot_bdhs_iterations

plot_bdhs_iterations(list(snakemake.input), snakemake.params.labels, snakemake.output.png, snakemake.output.svg)
