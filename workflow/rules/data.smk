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
        seed=config["seed"],
    script:
        "../scripts/build_base_model.py"


rule download_model:
    """Download the base model from the Hugging Face Hub at a pinned revision (token from HF_TOKEN)."""
    output:
        dir=directory("resources/models/{model}"),
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
        download=model_download,
    script:
        "../scripts/download_hf.py"


rule download_dataset:
    """Download one dataset snapshot from the Hugging Face Hub at a pinned revision (token from HF_TOKEN)."""
    output:
        dir=directory("resources/datasets/{dataset}"),
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
        download=dataset_download,
    script:
        "../scripts/download_hf.py"
