"""Snakemake adapter: write a variant's spec.json from its params."""

from mmalign.runlog import to_file

to_file(snakemake.log[0])  # noqa: F821

from mmalign.schema import write_json  # noqa: E402

write_json(snakemake.params.spec, snakemake.output.spec)  # noqa: F821
