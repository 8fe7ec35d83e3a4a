"""Snakemake adapter: the reference log-probs of one pair set, once, for every variant that trains on it."""

from mmalign.runlog import to_file

to_file(snakemake.log[0], snakemake.threads)

from mmalign.train.reference import compute_reference_logps

compute_reference_logps(snakemake.input.model, snakemake.input.pairs, snakemake.output.logps)
