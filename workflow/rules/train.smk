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
        spec="results/runs/{offline}/spec.json",
        model=base_model_dir(),
        pairs=variant_pairs,
    output:
        adapter=directory("results/runs/{offline}/adapter"),
        log_jsonl="results/runs/{offline}/train_log.jsonl",
        metrics="results/runs/{offline}/train_metrics.json",
    params:
        code=training_code,
    log:
        "logs/train_offline/{offline}.log",
    benchmark:
        "benchmarks/train_offline/{offline}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    script:
        "../scripts/train_variant.py"


rule train_online:
    """Train one online variant (Online-DPO, Mixed-DPO, online BDHS): pairs sampled from the policy each step,
    ranked by the variant's annotator (judges.<name>) or made by BDHS; the judge's verdicts are cached."""
    input:
        unpack(online_inputs),
    output:
        adapter=directory("results/runs/{online}/adapter"),
        log_jsonl="results/runs/{online}/train_log.jsonl",
        metrics="results/runs/{online}/train_metrics.json",
    params:
        code=training_code,
        judge=annotator_spec,
        judge_cache=JUDGMENT_CACHE,
    log:
        "logs/train_online/{online}.log",
    benchmark:
        "benchmarks/train_online/{online}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    script:
        "../scripts/train_variant.py"
