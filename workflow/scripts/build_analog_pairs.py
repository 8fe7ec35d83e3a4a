"""Snakemake adapter: a VLFeedback or RLHF-V analog pair set, generated with the base model on the world."""

from mmalign.prefork import hand_over

hand_over(globals())  # locally: run in a warm interpreter that has imported torch & co. (mmalign/prefork.py)

from mmalign.runlog import to_file

to_file(snakemake.log[0], snakemake.threads)

from mmalign import registry

spec = snakemake.params.spec
builder = registry.load(registry.PAIRSET_KINDS[spec["kind"]])  # the kind's module (mmalign.synthetic.analogs)
builder.build_analog_pairset(
    spec=spec,
    scenes_path=snakemake.input.scenes,
    images_dir=snakemake.input.images,
    model_dir=snakemake.input.model,
    pairs_path=snakemake.output.pairs,
    manifest_path=snakemake.output.manifest,
    seed=snakemake.params.seed,
    world_config=snakemake.params.world,
)
