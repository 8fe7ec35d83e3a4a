# Stage 1: the synthetic world, the base model (built or downloaded) and the downloads.


rule build_world:
    """Sample, render and store the synthetic world's scenes (disjoint sft / preference / eval splits)."""
    output:
        scenes="results/world/scenes.jsonl",
        images=directory("results/world/images"),
        summary="results/world/summary.json",
    log:
        "logs/build_world.log",
    cache: True
    conda:
        "../../envs/world.yaml"
    threads: 1
    params:
        code=code_of("build_world"),
        world=config.get("world", {}),
        seed=config["seed"],
    script:
        "../scripts/build_world.py"


rule build_base_model:
    """Build the tiny LLaVA, pretrain its vision tower per patch, and SFT it with TRL on the world's SFT split."""
    input:
        scenes="results/world/scenes.jsonl",
        images="results/world/images",
    output:
        model=directory("resources/models/{model}"),
        metrics="results/base_model/{model}.json",
    log:
        "logs/build_base_model/{model}.log",
    wildcard_constraints:
        model=_alternatives(built_models()),
    cache: True
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    params:
        code=code_of("build_base_model"),
        world=config.get("world", {}),
        build=config["base_model"].get("build", {}),
        seed=base_build_seed,
    script:
        "../scripts/build_base_model.py"


rule download_model:
    """Download a model (the base model, the BDHS embedder, a local judge) from the Hugging Face Hub at a pinned
    revision (token from HF_TOKEN), or copy its mirror; the manifest lists every file with its sha256."""
    output:
        dir=directory("resources/models/{model}"),
        manifest="resources/models/{model}.manifest.json",
    log:
        "logs/download_model/{model}.log",
    wildcard_constraints:
        model=_alternatives(downloaded_models()),
    cache: "omit-software"
    conda:
        "../../envs/download.yaml"
    threads: 1
    params:
        code=code_of("download_model"),
        name=lambda wildcards: model_download_name(wildcards),
        download=model_download,
        processor=lambda wildcards: (
            config["base_model"].get("processor") if wildcards.model == MODEL else None
        ),
    script:
        "../scripts/download_hf.py"


rule download_dataset:
    """Download one dataset snapshot from the Hugging Face Hub at a pinned revision (token from HF_TOKEN), or
    copy its mirror; the manifest lists every file with its sha256."""
    output:
        dir=directory("resources/datasets/{dataset}"),
        manifest="resources/datasets/{dataset}.manifest.json",
    log:
        "logs/download_dataset/{dataset}.log",
    wildcard_constraints:
        dataset=_alternatives(dataset_names()),
    cache: "omit-software"
    conda:
        "../../envs/download.yaml"
    threads: 1
    params:
        code=code_of("download_dataset"),
        name=lambda wildcards: wildcards.dataset,
        download=dataset_download,
        processor=None,
    script:
        "../scripts/download_hf.py"


rule verify_pins:
    """Check every downloads entry against the Hugging Face Hub (revision exists, allow_patterns match files);
    says plainly when the Hub cannot be reached. Run on demand: `snakemake verify_pins`. No output, never cached.
    """
    log:
        "logs/verify_pins.log",
    localrule: True
    conda:
        "../../envs/download.yaml"
    params:
        code=code_of("verify_pins"),
        downloads=DOWNLOADS,
    script:
        "../scripts/verify_pins.py"
