# Stage 3: alignment variants.


rule variant_spec:
    """Write everything that defines one variant's run; training reruns when (and only when) it changes."""
    output:
        spec="results/runs/{trained}/spec.json",
    params:
        spec=variant_spec,
    log:
        "logs/variant_spec/{trained}.log",
    conda:
        "../../envs/pairs.yaml"
    localrule: True
    threads: 1
    script:
        "../scripts/variant_spec.py"


rule train_offline:
    """Train one offline variant (DPO / IPO / SLiC via loss_type) with TRL's DPOTrainer and a LoRA adapter."""
    input:
        spec="results/runs/{trained}/spec.json",
        model=base_model_dir(),
        pairs=variant_pairs,
    output:
        adapter=directory("results/runs/{trained}/adapter"),
        log_jsonl="results/runs/{trained}/train_log.jsonl",
        metrics="results/runs/{trained}/train_metrics.json",
    params:
        code=code_version("train.py", "launch.py", "schema.py"),
    log:
        "logs/train_offline/{trained}.log",
    benchmark:
        "benchmarks/train_offline/{trained}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    script:
        "../scripts/train_offline.py"
