"""Snakemake adapter: all metrics.json (and the judgments they were scored from) -> results/tables/metrics.csv."""

from pathlib import Path

from mmalign.runlog import to_file

to_file(snakemake.log[0])

from mmalign.report.metrics import aggregate
from mmalign.report.uncertainty import Settings

if __name__ == "__main__":  # where workers are spawned (macOS), each imports this file again: only the job runs it
    aggregate(
        list(snakemake.input.metrics),
        snakemake.output[0],
        Settings.from_config(snakemake.params.uncertainty),
        dict(snakemake.params.replicates),
        {Path(path).parent.name: path for path in snakemake.input.benchmark_items},
        workers=snakemake.threads,
    )
