"""Snakemake adapter: write a variant's spec.json from its params, every training setting resolved."""

from mmalign.runlog import to_file

to_file(snakemake.log[0])

from mmalign.schema import write_json
from mmalign.train.settings import resolved_spec

write_json(resolved_spec(snakemake.params.spec), snakemake.output.spec)
