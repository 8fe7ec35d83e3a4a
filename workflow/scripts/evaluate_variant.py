"""Snakemake adapter: evaluate one variant on every benchmark, loading the policy once."""

from mmalign.prefork import hand_over

hand_over(globals())  # locally: run in a warm interpreter that has imported torch & co. (mmalign/prefork.py)

from mmalign.runlog import to_file

to_file(snakemake.log[0], snakemake.threads)

from mmalign.gpus import require_requested_gpus

require_requested_gpus(dict(snakemake.resources.items()))  # a GPU request without a GPU stops here

from mmalign.evaluate.run import evaluate_suite

out = snakemake.output
runs = {
    benchmark: {
        **run,
        "items_path": items,
        "out_predictions": predictions,
        "out_judgments": judgments,
        "out_metrics": metrics,
    }
    for (benchmark, run), items, predictions, judgments, metrics in zip(
        snakemake.params.runs.items(),
        snakemake.input.benchmark_items,
        out.predictions,
        out.judgments,
        out.metrics,
    )
}
evaluate_suite(
    variant=snakemake.wildcards.variant,
    runs=runs,
    model_dir=snakemake.input.model,
    adapter_dir=snakemake.input.get("adapter"),
    seed=snakemake.params.seed,
    judge_cache=snakemake.params.judge_cache,
    compute=snakemake.params.compute,
)
