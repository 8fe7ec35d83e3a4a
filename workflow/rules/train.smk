# Stage 3: alignment variants.


rule variant_spec:
    """Write everything that defines one variant's run, every setting resolved; training reruns when (and only
    when) it changes."""
    output:
        spec="results/runs/{trained}/spec.json",
    log:
        "logs/variant_spec/{trained}.log",
    localrule: True
    conda:
        "../../envs/pairs.yaml"
    threads: 1
    params:
        spec=variant_spec,
        code=code_of("variant_spec"),
    script:
        "../scripts/variant_spec.py"


rule reference_logps:
    """The reference policy's log-probs of every pair of a pair set that several variants train on (the base model
    with its LoRA adapter disabled, as in a PEFT run), computed once and read by each of them
    (mmalign.train.reference; a set only one variant reads is scored inside that run). The fingerprint beside it
    names the base model, pair table and code it is for."""
    input:
        unpack(reference_inputs),
    output:
        logps="results/reference_logps/{pairset}/logps.parquet",
        fingerprint="results/reference_logps/{pairset}/logps.parquet.json",
    log:
        "logs/reference_logps/{pairset}.log",
    wildcard_constraints:
        pairset=_alternatives(REFERENCE_PAIRSETS),
    cache: True
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        code=code_of("reference_logps"),
        compute=COMPUTE,
    script:
        "../scripts/reference_logps.py"


rule train:
    """Train one variant with TRL's DPOTrainer and a LoRA adapter. The method (mmalign.train.methods) says where
    the pairs come from: the pair set (dpo, image_distortion; loss_type picks DPO / IPO / SLiC) or the policy
    during training (online_dpo, mixed_dpo: ranked by the variant's annotator, a judges entry, its verdicts
    cached; online_bdhs: made by BDHS)."""
    input:
        unpack(train_inputs),
    output:
        adapter=directory("results/runs/{trained}/adapter"),
        log_jsonl="results/runs/{trained}/train_log.jsonl",
        metrics="results/runs/{trained}/train_metrics.json",
    log:
        "logs/train/{trained}.log",
    benchmark:
        "results/timing/train/{trained}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        code=code_of("train"),
        judge=annotator_spec,
        judge_cache=JUDGMENT_CACHE,
    script:
        "../scripts/train_variant.py"
