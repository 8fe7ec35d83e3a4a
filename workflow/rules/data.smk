# Stage 1: the synthetic world, the base model (built or downloaded) and the downloads.


rule build_world:
    """Sample, render and store the synthetic world's scenes (disjoint sft / preference / eval splits)."""
    output:
        scenes="results/world/scenes.jsonl",
        images=directory("results/world/images"),
        summary="results/world/summary.json",
    params:
        code=code_of("build_world"),
        world=config.get("world", {}),
        seed=config["seed"],
    log:
        "logs/build_world.log",
    conda:
        "../../envs/world.yaml"
    cache: True
    threads: 1
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
    wildcard_constraints:
        model=_alternatives(built_models()),
    params:
        code=code_of("build_base_model"),
        world=config.get("world", {}),
        build=config["base_model"].get("build", {}),
        seed=config["seed"],
    log:
        "logs/build_base_model/{model}.log",
    conda:
        "../../envs/train.yaml"
    cache: True
    threads: 2
    resources:
        mem_mb=4000,
    script:
        "../scripts/build_base_model.py"


rule download_model:
    """Download the base model from the Hugging Face Hub at a pinned revision (token from HF_TOKEN)."""
    output:
        dir=directory("resources/models/{model}"),
    wildcard_constraints:
        model=_alternatives(downloaded_models()),
    params:
        code=code_of("download_model"),
        download=model_download,
    log:
        "logs/download_model/{model}.log",
    conda:
        "../../envs/download.yaml"
    cache: "omit-software"
    threads: 1
    script:
        "../scripts/download_hf.py"


rule download_dataset:
    """Download one dataset snapshot from the Hugging Face Hub at a pinned revision (token from HF_TOKEN)."""
    output:
        dir=directory("resources/datasets/{dataset}"),
    wildcard_constraints:
        dataset=_alternatives(dataset_names()),
    params:
        code=code_of("download_dataset"),
        download=dataset_download,
    log:
        "logs/download_dataset/{dataset}.log",
    conda:
        "../../envs/download.yaml"
    cache: "omit-software"
    threads: 1
    script:
        "../scripts/download_hf.py"

