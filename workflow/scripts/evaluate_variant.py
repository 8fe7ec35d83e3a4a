"""Snakemake adapter: evaluate one variant on every benchmark, loading the policy once."""

from mmalign.runlog import to_file

to_file(snakemake.log[0], snakemake.threads)  # noqa: F821

from mmalign.gpus import require_requested_gpus  # noqa: E402

require_requested_gpus(dict(snakemake.resources.items()))  # noqa: F821  (a GPU request without a GPU stops here)

from mmalign.evaluate.run import evaluate_suite  # noqa: E402

out = snakemake.output  # noqa: F821
runs = {
    benchmark: {**run, "items_path": items, "out_predictions": predictions, "out_judgments": judgments,
                "out_metrics": metrics}
    for (benchmark, run), items, predictions, judgments, metrics in zip(
        snakemake.params.runs.items(), snakemake.input.benchmark_items, out.predictions, out.judgments, out.metrics  # noqa: F821
    )
}
evaluate_suite(
    variant=snakemake.wildcards.variant,  # noqa: F821
    runs=runs,
    model_dir=snakemake.input.model,  # noqa: F821
    adapter_dir=snakemake.input.get("adapter"),  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
    judge_cache=snakemake.params.judge_cache,  # noqa: F821
)
