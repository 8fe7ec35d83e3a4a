"""Snakemake adapter: a VLFeedback or RLHF-V analog pair set, generated with the base model on the world."""

from mmalign.runlog import to_file

to_file(snakemake.log[0], snakemake.threads)  # noqa: F821

from mmalign import registry  # noqa: E402

spec = snakemake.params.spec  # noqa: F821
builder = registry.load(registry.PAIRSET_KINDS[spec["kind"]])  # the kind's module (mmalign.synthetic.analogs)
builder.build_analog_pairset(
    spec=spec,
    scenes_path=snakemake.input.scenes,  # noqa: F821
    images_dir=snakemake.input.images,  # noqa: F821
    model_dir=snakemake.input.model,  # noqa: F821
    pairs_path=snakemake.output.pairs,  # noqa: F821
    manifest_path=snakemake.output.manifest,  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
    world_config=snakemake.params.world,  # noqa: F821
)
