"""Snakemake adapter: generate and render the synthetic world."""

from mmalign.runlog import to_file

to_file(snakemake.log[0])  # noqa: F821

from mmalign.schema import write_json  # noqa: E402
from mmalign.synthetic.world import WorldSettings, write_world  # noqa: E402

settings = WorldSettings.from_config({**snakemake.params.world, "seed": snakemake.params.seed})  # noqa: F821
counts = write_world(settings, snakemake.output.scenes, snakemake.output.images)  # noqa: F821
write_json({"scenes": counts}, snakemake.output.summary)  # noqa: F821
