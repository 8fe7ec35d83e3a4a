"""Snakemake adapter: Table 7, every reward model's accuracy on every held-out split, with intervals."""

from mmalign.runlog import to_file

to_file(snakemake.log[0])

from mmalign.report.reward_table import write_reward_table
from mmalign.report.uncertainty import Settings

published = list(snakemake.input.published)  # empty unless report.compare_with_paper
table = dict(snakemake.params.table)
write_reward_table(
    snakemake.input.accuracies,
    table.get("name", "table7"),
    table,
    Settings.from_config(snakemake.params.uncertainty),
    snakemake.output.csv,
    snakemake.output.md,
    snakemake.output.png,
    snakemake.output.svg,
    published[0] if published else None,
)
