"""Snakemake adapter: an offline BDHS pair set from a source pair set and the base model."""

from mmalign.runlog import to_file

to_file(snakemake.log[0], snakemake.threads)

from mmalign.gpus import require_requested_gpus

require_requested_gpus(dict(snakemake.resources.items()))  # a GPU request without a GPU stops here

from mmalign.pairs.bdhs import build_bdhs_pairset

build_bdhs_pairset(
    source_pairs=snakemake.input.source,
    model_dir=snakemake.input.model,
    spec=snakemake.params.spec,
    pairs_path=snakemake.output.pairs,
    manifest_path=snakemake.output.manifest,
    stats_path=snakemake.output.stats,
    seed=snakemake.params.seed,
)
