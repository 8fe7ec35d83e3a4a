"""Snakemake adapter: one reward model's accuracy on one pair set's held-out split (a cell of Table 7)."""

from mmalign.runlog import to_file

to_file(snakemake.log[0], snakemake.threads)

import json
from pathlib import Path

from mmalign.reward.study import evaluate_heldout

adapter = Path(snakemake.input.adapter)
trained = json.loads((adapter.parent / "train_metrics.json").read_text())  # written beside the adapter
evaluate_heldout(
    snakemake.input.model,
    adapter,
    snakemake.input.heldout,
    reward_model=snakemake.wildcards.rm,
    pairset=snakemake.wildcards.pairset,
    trained_on=trained["trained_on"],
    out_json=snakemake.output.accuracy,
    out_jsonl=snakemake.output.scores,
    batch_size=trained["settings"].get("score_batch_size", 8),
)
