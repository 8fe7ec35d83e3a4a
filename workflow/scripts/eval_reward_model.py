"""Snakemake adapter: one reward model's accuracy on the held-out split of every Table 7 column (a row)."""

from mmalign.prefork import hand_over

hand_over(globals())  # locally: run in a warm interpreter that has imported torch & co. (mmalign/prefork.py)

from mmalign.runlog import to_file

to_file(snakemake.log[0], snakemake.threads)

import json
from pathlib import Path

from mmalign.reward.study import evaluate_heldout

trained = json.loads(Path(snakemake.input.metrics).read_text())
evaluate_heldout(
    snakemake.input.model,
    snakemake.input.adapter,
    {Path(p).parent.name: p for p in snakemake.input.heldout},  # results/reward/splits/<pairset>/heldout.parquet
    reward_model=snakemake.wildcards.rm,
    trained_on=trained["trained_on"],
    out_dir=Path(snakemake.output.accuracy[0]).parent,
    batch_size=trained["settings"].get("score_batch_size", 8),
    compute=snakemake.params.compute,
)
