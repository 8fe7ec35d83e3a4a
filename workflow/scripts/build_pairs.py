"""Snakemake adapter: build one pair set (results/pairs/<pairset>/) in the common preference schema."""

from mmalign.runlog import to_file

to_file(snakemake.log[0])  # noqa: F821

from mmalign.pairs.build import build_pairset  # noqa: E402

build_pairset(
    spec=snakemake.params.spec,  # noqa: F821
    inputs=dict(snakemake.input.items()),  # noqa: F821
    pairs_path=snakemake.output.pairs,  # noqa: F821
    manifest_path=snakemake.output.manifest,  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
    world_config=snakemake.params.world,  # noqa: F821
    name=snakemake.wildcards.pairset,  # noqa: F821
    outputs=dict(snakemake.output.items()),  # noqa: F821
)
