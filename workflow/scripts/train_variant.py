"""Snakemake adapter: train one variant (offline, or online with a judge) from its spec.json, on the processes /
GPUs the job was given."""

from mmalign.runlog import to_file

to_file(snakemake.log[0], snakemake.threads)  # noqa: F821

from pathlib import Path  # noqa: E402

from mmalign.train.launch import train_variant  # noqa: E402

train_variant(
    spec_path=snakemake.input.spec,  # noqa: F821
    model_dir=snakemake.input.model,  # noqa: F821
    pairs_path=snakemake.input.pairs,  # noqa: F821
    out_dir=Path(snakemake.output.adapter).parent,  # noqa: F821
    metrics_path=snakemake.output.metrics,  # noqa: F821
    resources=dict(snakemake.resources.items()),  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
    log_path=snakemake.log[0],  # noqa: F821
    judge=snakemake.params.get("judge") or None,  # noqa: F821
    judge_cache=snakemake.params.get("judge_cache") or None,  # noqa: F821
    scenes_path=snakemake.input.get("scenes") or None,  # noqa: F821
)
