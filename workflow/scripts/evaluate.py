"""Snakemake adapter: evaluate one variant on one benchmark."""

from mmalign.runlog import to_file

to_file(snakemake.log[0], snakemake.threads)  # noqa: F821

from mmalign.gpus import require_requested_gpus  # noqa: E402

require_requested_gpus(dict(snakemake.resources.items()))  # noqa: F821  (a GPU request without a GPU stops here)

from mmalign.evaluate.run import evaluate  # noqa: E402

evaluate(
    variant=snakemake.wildcards.variant,  # noqa: F821
    benchmark=snakemake.wildcards.benchmark,  # noqa: F821
    spec=snakemake.params.spec,  # noqa: F821
    model_dir=snakemake.input.model,  # noqa: F821
    adapter_dir=snakemake.input.get("adapter"),  # noqa: F821
    items_path=snakemake.input.items_jsonl,  # noqa: F821
    out_predictions=snakemake.output.predictions,  # noqa: F821
    out_judgments=snakemake.output.judgments,  # noqa: F821
    out_metrics=snakemake.output.metrics,  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
    judge_spec=snakemake.params.judge or None,  # noqa: F821
    judge_cache=snakemake.params.judge_cache,  # noqa: F821
    judge_model_dir=snakemake.input.get("judge_model"),  # noqa: F821
)
