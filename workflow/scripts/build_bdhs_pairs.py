"""Snakemake adapter: an offline BDHS pair set from a source pair set and the base model."""

from mmalign.runlog import to_file

to_file(snakemake.log[0], snakemake.threads)  # noqa: F821

from mmalign.gpus import require_requested_gpus  # noqa: E402

require_requested_gpus(dict(snakemake.resources.items()))  # noqa: F821  (a GPU request without a GPU stops here)

from mmalign.pairs.bdhs import build_bdhs_pairset  # noqa: E402

build_bdhs_pairset(
    source_pairs=snakemake.input.source,  # noqa: F821
    model_dir=snakemake.input.model,  # noqa: F821
    spec=snakemake.params.spec,  # noqa: F821
    pairs_path=snakemake.output.pairs,  # noqa: F821
    manifest_path=snakemake.output.manifest,  # noqa: F821
    stats_path=snakemake.output.stats,  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
)
