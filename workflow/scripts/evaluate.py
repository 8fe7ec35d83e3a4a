"""Snakemake adapter: evaluate one variant on one benchmark."""

from mmalign.prefork import hand_over

hand_over(globals())  # locally: run in a warm interpreter that has imported torch & co. (mmalign/prefork.py)

from mmalign.runlog import to_file

to_file(snakemake.log[0], snakemake.threads)

from mmalign.gpus import require_requested_gpus

require_requested_gpus(dict(snakemake.resources.items()))  # a GPU request without a GPU stops here

from mmalign.evaluate.run import evaluate

evaluate(
    variant=snakemake.wildcards.variant,
    benchmark=snakemake.wildcards.benchmark,
    spec=snakemake.params.spec,
    model_dir=snakemake.input.model,
    adapter_dir=snakemake.input.get("adapter"),
    items_path=snakemake.input.items_jsonl,
    out_predictions=snakemake.output.predictions,
    out_judgments=snakemake.output.judgments,
    out_metrics=snakemake.output.metrics,
    seed=snakemake.params.seed,
    judge_spec=snakemake.params.judge or None,
    judge_cache=snakemake.params.judge_cache,
    judge_model_dir=snakemake.input.get("judge_model"),
    compute=snakemake.params.compute,
)
