"""Snakemake adapter: train one variant (offline, or online with a judge) from its spec.json, on the processes /
GPUs the job was given."""

from mmalign.prefork import hand_over

hand_over(globals())  # locally: run in a warm interpreter that has imported torch & co. (mmalign/prefork.py)

from mmalign.runlog import to_file

to_file(snakemake.log[0], snakemake.threads)

from pathlib import Path

from mmalign.train.launch import train_variant

train_variant(
    spec_path=snakemake.input.spec,
    model_dir=snakemake.input.model,
    pairs_path=snakemake.input.pairs,
    out_dir=Path(snakemake.output.adapter).parent,
    metrics_path=snakemake.output.metrics,
    resources=dict(snakemake.resources.items()),
    threads=snakemake.threads,
    log_path=snakemake.log[0],
    judge=snakemake.params.get("judge") or None,
    judge_cache=snakemake.params.get("judge_cache") or None,
    scenes_path=snakemake.input.get("scenes") or None,
    reference_logps=snakemake.input.get("reference_logps") or None,
    reward_model=snakemake.input.get("reward_model") or None,
)
