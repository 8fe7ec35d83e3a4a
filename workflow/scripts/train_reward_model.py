"""Snakemake adapter: train one reward model on the train splits of its pair sets."""

from mmalign.prefork import hand_over

hand_over(globals())  # locally: run in a warm interpreter that has imported torch & co. (mmalign/prefork.py)

from mmalign.runlog import to_file

to_file(snakemake.log[0], snakemake.threads)

from pathlib import Path

import torch

from mmalign.gpus import check_gpus
from mmalign.provenance import run_environment
from mmalign.reward.study import train_study_reward_model
from mmalign.schema import write_json

settings = dict(snakemake.params.settings)
gpus = check_gpus(dict(snakemake.resources.items()), torch.cuda.is_available(), torch.cuda.device_count())
splits = {Path(p).parent.name: p for p in snakemake.input.train}  # results/reward/splits/<pairset>/train.parquet
metrics = train_study_reward_model(
    snakemake.input.model,
    splits,
    Path(snakemake.output.adapter).parent,
    settings,
    use_cpu=gpus == 0,
    compute=snakemake.params.compute,
)
write_json(
    {"reward_model": snakemake.wildcards.rm, **metrics, "environment": run_environment()}, snakemake.output.metrics
)
