"""Snakemake adapter: an offline BDHS pair set from a source pair set and the base model."""

from mmalign.prefork import hand_over

hand_over(globals())  # locally: run in a warm interpreter that has imported torch & co. (mmalign/prefork.py)

from mmalign.runlog import to_file

to_file(snakemake.log[0], snakemake.threads)

from mmalign.gpus import require_requested_gpus

require_requested_gpus(dict(snakemake.resources.items()))  # a GPU request without a GPU stops here

from mmalign.pairs.bdhs import build_bdhs_pairset

spec = dict(snakemake.params.spec)
if snakemake.input.get("embedder"):  # a downloads entry: read from its download directory
    spec["embedder"] = snakemake.input.embedder

build_bdhs_pairset(
    source_pairs=snakemake.input.source,
    model_dir=snakemake.input.model,
    spec=spec,
    pairs_path=snakemake.output.pairs,
    manifest_path=snakemake.output.manifest,
    stats_path=snakemake.output.stats,
    seed=snakemake.params.seed,
    compute=snakemake.params.compute,
)
