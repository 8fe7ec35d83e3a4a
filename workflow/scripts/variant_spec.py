"""Snakemake adapter: write a variant's spec.json from its params, every training setting resolved."""

from mmalign.runlog import to_file

to_file(snakemake.log[0])  # noqa: F821

from mmalign.schema import write_json  # noqa: E402
from mmalign.train.settings import resolved_spec  # noqa: E402

write_json(resolved_spec(snakemake.params.spec), snakemake.output.spec)  # noqa: F821
