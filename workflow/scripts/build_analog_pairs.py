"""Snakemake adapter: a VLFeedback or RLHF-V analog pair set, generated with the base model on the world."""

from mmalign.runlog import to_file

to_file(snakemake.log[0], snakemake.threads)  # noqa: F821

from mmalign.analogs import build_analog_pairset  # noqa: E402

build_analog_pairset(
    spec=snakemake.params.spec,  # noqa: F821
    scenes_path=snakemake.input.scenes,  # noqa: F821
    images_dir=snakemake.input.images,  # noqa: F821
    model_dir=snakemake.input.model,  # noqa: F821
    pairs_path=snakemake.output.pairs,  # noqa: F821
    manifest_path=snakemake.output.manifest,  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
    world_config=snakemake.params.world,  # noqa: F821
)
