"""Snakemake adapter: build and SFT the tiny LLaVA base model."""

from mmalign.runlog import to_file

to_file(snakemake.log[0], snakemake.threads)

from pathlib import Path

from mmalign.provenance import run_environment
from mmalign.schema import write_json
from mmalign.synthetic.tinyllava import TinyLlavaSettings, build_base_model
from mmalign.synthetic.world import WorldSettings, load_scenes

world = WorldSettings.from_config({**snakemake.params.world, "seed": snakemake.params.seed})
settings = TinyLlavaSettings.from_config({**snakemake.params.build, "seed": snakemake.params.seed})
scenes = load_scenes(snakemake.input.scenes, split="sft")
metrics = build_base_model(world, settings, scenes, Path(snakemake.input.images), Path(snakemake.output.model))
write_json({**metrics, "environment": run_environment()}, snakemake.output.metrics)
