# Stage 2: preference pairs, every source in one schema.


rule build_pairs:
    """Build one pair set in the common preference schema, with a manifest of rows read, kept and dropped."""
    input:
        unpack(pair_inputs),
    output:
        pairs="results/pairs/{pairset}/pairs.parquet",
        manifest="results/pairs/{pairset}/manifest.json",
    params:
        code=code_version("world.py", "language.py", "pairs.py", "schema.py", "sources/povid.py"),
        spec=settings_of("pairsets"),
        world=config.get("world", {}),
        seed=config["seed"],
    log:
        "logs/build_pairs/{pairset}.log",
    conda:
        "../../envs/pairs.yaml"
    cache: True
    threads: 1
    script:
        "../scripts/build_pairs.py"
