"""Snakemake adapter: one benchmark's items, from the synthetic world or from a downloaded snapshot."""

from mmalign.runlog import to_file

to_file(snakemake.log[0])

from mmalign.evaluate.items import build_items

build_items(
    spec=snakemake.params.spec,
    inputs=dict(snakemake.input.items()),
    items_path=snakemake.output.items_jsonl,
    images_dir=snakemake.output.images,
    manifest_path=snakemake.output.manifest,
    seed=snakemake.params.seed,
)
