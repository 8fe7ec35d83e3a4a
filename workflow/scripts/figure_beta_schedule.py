"""Snakemake adapter: Fig. 9 (the diffusion beta schedule of BDHS_noise)."""

from mmalign.runlog import to_file

to_file(snakemake.log[0])

from mmalign.report.figures import plot_beta_schedule

plot_beta_schedule(snakemake.input[0], snakemake.params.noise_levels, snakemake.output.png, snakemake.output.svg)
