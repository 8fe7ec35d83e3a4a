"""Snakemake adapter: build and SFT the tiny LLaVA base model."""

from mmalign.runlog import to_file

to_file(snakemake.log[0], snakemake.threads)  # noqa: F821

from pathlib import Path  # noqa: E402

from mmalign.schema import write_json  # noqa: E402
from mmalign.synthetic.tinyllava import TinyLlavaSettings, build_base_model  # noqa: E402
from mmalign.synthetic.world import WorldSettings, load_scenes  # noqa: E402

world = WorldSettings.from_config({**snakemake.params.world, "seed": snakemake.params.seed})  # noqa: F821
settings = TinyLlavaSettings.from_config({**snakemake.params.build, "seed": snakemake.params.seed})  # noqa: F821
scenes = load_scenes(snakemake.input.scenes, split="sft")  # noqa: F821
metrics = build_base_model(world, settings, scenes, Path(snakemake.input.images), Path(snakemake.output.model))  # noqa: F821
write_json(metrics, snakemake.output.metrics)  # noqa: F821
