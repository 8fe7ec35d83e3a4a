# Stage 4: benchmark items, then every variant on every benchmark.
#
# evaluation.jobs (config) picks the job granularity: per_benchmark (default: `evaluate`, one job per variant and
# benchmark, the paper study's choice: GPU jobs sized per benchmark) or per_variant (`evaluate_variant`, one job
# per variant loading the policy once; the default study's choice). Both write the same files.


rule benchmark_items:
    """Write one benchmark's items in the common schema: built from the world, or read from a download."""
    input:
        unpack(benchmark_inputs),
    output:
        items_jsonl="results/benchmarks/{benchmark}/items.jsonl",
        images=directory("results/benchmarks/{benchmark}/images"),
        manifest="results/benchmarks/{benchmark}/manifest.json",
    log:
        "logs/benchmark_items/{benchmark}.log",
    cache: True
    conda:
        "../../envs/eval.yaml"
    threads: 1
    params:
        code=code_of("benchmark_items"),
        spec=settings_of("benchmarks"),
        seed=config["seed"],
    script:
        "../scripts/benchmark_items.py"


if not EVAL_PER_VARIANT:

    rule evaluate:
        """Generate answers for one benchmark with one variant, keep them and every verdict, and score them (by the
        benchmark's rule or its judge; raw judgments are also cached in results/judgments/cache.sqlite).
        """
        input:
            unpack(policy_inputs),
        output:
            predictions="results/eval/{variant}/{benchmark}/predictions.jsonl",
            judgments="results/eval/{variant}/{benchmark}/judgments.jsonl",
            metrics="results/eval/{variant}/{benchmark}/metrics.json",
        log:
            "logs/evaluate/{variant}/{benchmark}.log",
        benchmark:
            "results/timing/evaluate/{variant}/{benchmark}.tsv"
        conda:
            "../../envs/eval.yaml"
        threads: 1
        resources:
            mem_mb=2000,
        params:
            code=code_of("evaluate"),
            spec=settings_of("benchmarks"),
            judge=benchmark_judge,
            judge_cache=JUDGMENT_CACHE,
            seed=config["seed"],
            compute=COMPUTE,
        script:
            "../scripts/evaluate.py"

else:

    rule evaluate_variant:
        """One variant on every benchmark in one job: the policy is loaded once (evaluation.jobs: per_variant).
        Same per-benchmark outputs as `evaluate`; the log and the benchmark file are per variant."""
        input:
            unpack(suite_inputs),
        output:
            predictions=expand("results/eval/{{variant}}/{benchmark}/predictions.jsonl", benchmark=BENCHMARKS),
            judgments=expand("results/eval/{{variant}}/{benchmark}/judgments.jsonl", benchmark=BENCHMARKS),
            metrics=expand("results/eval/{{variant}}/{benchmark}/metrics.json", benchmark=BENCHMARKS),
        log:
            "logs/evaluate/{variant}.log",
        benchmark:
            "results/timing/evaluate/{variant}.tsv"
        conda:
            "../../envs/eval.yaml"
        threads: 1
        resources:
            mem_mb=2000,
        params:
            code=code_of("evaluate_variant"),
            runs=suite_runs(),
            judge_cache=JUDGMENT_CACHE,
            seed=config["seed"],
            compute=COMPUTE,
        script:
            "../scripts/evaluate_variant.py"
