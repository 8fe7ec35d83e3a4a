"""Snakemake adapter: one benchmark's items, from the synthetic world or from a downloaded snapshot."""

from mmalign.runlog import to_file

to_file(snakemake.log[0])  # noqa: F821

from mmalign.evaluate.items import build_items  # noqa: E402

build_items(
    spec=snakemake.params.spec,  # noqa: F821
    inputs=dict(snakemake.input.items()),  # noqa: F821
    items_path=snakemake.output.items_jsonl,  # noqa: F821
    images_dir=snakemake.output.images,  # noqa: F821
    manifest_path=snakemake.output.manifest,  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
)
