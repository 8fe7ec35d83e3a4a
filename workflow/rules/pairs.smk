# Stage 2: preference pairs, every source in one schema.


rule build_pairs:
    """Build one pair set in the common preference schema, with a manifest of rows read, kept and dropped."""
    input:
        unpack(pair_inputs),
    output:
        pairs="results/pairs/{pairset}/pairs.parquet",
        manifest="results/pairs/{pairset}/manifest.json",
    log:
        "logs/build_pairs/{pairset}.log",
    wildcard_constraints:
        pairset=_alternatives(pairsets_of("build_pairs")),
    cache: True
    conda:
        "../../envs/pairs.yaml"
    threads: 1
    params:
        code=code_of("build_pairs"),
        spec=settings_of("pairsets"),
        world=config.get("world", {}),
        seed=config["seed"],
    script:
        "../scripts/build_pairs.py"


rule build_bdhs_pairs:
    """Offline BDHS: sample a policy-derived rejected answer for every pair of a source set with the base model."""
    input:
        unpack(bdhs_inputs),
    output:
        pairs="results/pairs/{pairset}/pairs.parquet",
        manifest="results/pairs/{pairset}/manifest.json",
        stats="results/pairs/{pairset}/bdhs_iterations.jsonl",
    log:
        "logs/build_bdhs_pairs/{pairset}.log",
    benchmark:
        "results/timing/build_bdhs_pairs/{pairset}.tsv"
    wildcard_constraints:
        pairset=_alternatives(pairsets_of("build_bdhs_pairs")),
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        spec=settings_of("pairsets"),
        seed=config["seed"],
        code=code_of("build_bdhs_pairs"),
        compute=COMPUTE,
    script:
        "../scripts/build_bdhs_pairs.py"


rule build_analog_pairs:
    """VLFeedback / RLHF-V analog: base-model answers on the preference split, ranked or corrected by the exact judge."""
    input:
        scenes="results/world/scenes.jsonl",
        images="results/world/images",
        model=pairset_base_model,
    output:
        pairs="results/pairs/{pairset}/pairs.parquet",
        manifest="results/pairs/{pairset}/manifest.json",
    log:
        "logs/build_analog_pairs/{pairset}.log",
    benchmark:
        "results/timing/build_analog_pairs/{pairset}.tsv"
    wildcard_constraints:
        pairset=_alternatives(pairsets_of("build_analog_pairs")),
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        spec=settings_of("pairsets"),
        world=config.get("world", {}),
        seed=config["seed"],
        code=code_of("build_analog_pairs"),
    script:
        "../scripts/build_analog_pairs.py"


rule build_pairs_with_images:
    """A real pair source whose images come inside its records (RLHF-V's parquet): pairs plus the images written out."""
    input:
        unpack(pair_inputs),
    output:
        pairs="results/pairs/{pairset}/pairs.parquet",
        manifest="results/pairs/{pairset}/manifest.json",
        images=directory("results/pairs/{pairset}/images"),
    log:
        "logs/build_pairs_with_images/{pairset}.log",
    wildcard_constraints:
        pairset=_alternatives(pairsets_of("build_pairs_with_images")),
    cache: True
    conda:
        "../../envs/pairs.yaml"
    threads: 1
    params:
        code=code_of("build_pairs_with_images"),
        spec=settings_of("pairsets"),
        world=config.get("world", {}),
        seed=config["seed"],
    script:
        "../scripts/build_pairs.py"
