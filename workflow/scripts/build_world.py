"""Snakemake adapter: generate and render the synthetic world."""

from mmalign.runlog import to_file

to_file(snakemake.log[0])

from mmalign.schema import write_json
from mmalign.synthetic.world import WorldSettings, write_world

settings = WorldSettings.from_config({**snakemake.params.world, "seed": snakemake.params.seed})
counts = write_world(settings, snakemake.output.scenes, snakemake.output.images)
write_json({"scenes": counts}, snakemake.output.summary)
