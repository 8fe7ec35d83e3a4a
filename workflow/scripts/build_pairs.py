"""Snakemake adapter: build one pair set (results/pairs/<pairset>/) in the common preference schema."""

from mmalign.runlog import to_file

to_file(snakemake.log[0])

from mmalign.pairs.build import build_pairset

build_pairset(
    spec=snakemake.params.spec,
    inputs=dict(snakemake.input.items()),
    pairs_path=snakemake.output.pairs,
    manifest_path=snakemake.output.manifest,
    seed=snakemake.params.seed,
    world_config=snakemake.params.world,
    name=snakemake.wildcards.pairset,
    outputs=dict(snakemake.output.items()),
)
