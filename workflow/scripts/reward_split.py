"""Snakemake adapter: one pair set's reward-model split, train and held-out, disjoint by image."""

from mmalign.runlog import to_file

to_file(snakemake.log[0])

from mmalign.reward.splits import DEFAULT_HELDOUT_SHARE, write_split

split = dict(snakemake.params.split)
write_split(
    snakemake.input.pairs,
    snakemake.output.train,
    snakemake.output.heldout,
    snakemake.output.manifest,
    heldout_share=split.get("heldout_share", DEFAULT_HELDOUT_SHARE),
    seed=split.get("seed", snakemake.params.seed),
)
