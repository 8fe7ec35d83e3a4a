# Stage 4: every variant on every benchmark.


rule evaluate:
    """Generate answers for one benchmark with one variant, keep them and every verdict, and score them (by the
    benchmark's rule or its judge; raw judgments are also cached in results/judgments/cache.sqlite)."""
    input:
        unpack(policy_inputs),
    output:
        predictions="results/eval/{variant}/{benchmark}/predictions.jsonl",
        judgments="results/eval/{variant}/{benchmark}/judgments.jsonl",
        metrics="results/eval/{variant}/{benchmark}/metrics.json",
    params:
        code=code_version(
            "evaluate.py", "models.py", "benchmarks/*.py", "language.py", "schema.py", "judges/*.py", "launch.py"
        ),
        spec=settings_of("benchmarks"),
        judge=benchmark_judge,
        judge_cache=JUDGMENT_CACHE,
        seed=config["seed"],
    log:
        "logs/evaluate/{variant}/{benchmark}.log",
    benchmark:
        "benchmarks/evaluate/{variant}/{benchmark}.tsv"
    conda:
        "../../envs/eval.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    script:
        "../scripts/evaluate.py"
