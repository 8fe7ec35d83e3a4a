"""Snakemake adapter: the reference log-probs of one pair set, once, for the variants that train on it."""

from mmalign.prefork import hand_over

hand_over(globals())  # locally: run in a warm interpreter that has imported torch & co. (mmalign/prefork.py)

from mmalign.runlog import to_file

to_file(snakemake.log[0], snakemake.threads)

import torch

from mmalign.gpus import check_gpus
from mmalign.train.reference import compute_reference_logps

check_gpus(dict(snakemake.resources.items()), torch.cuda.is_available(), torch.cuda.device_count())
compute_reference_logps(
    snakemake.input.model, snakemake.input.pairs, snakemake.output.logps, compute=snakemake.params.compute
)
