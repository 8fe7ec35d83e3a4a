"""Snakemake adapter: train one variant (offline, or online with a judge) from its spec.json."""

from mmalign.runlog import to_file

to_file(snakemake.log[0], snakemake.threads)  # noqa: F821

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from mmalign.schema import write_json  # noqa: E402
from mmalign.train import DPOSettings, train_dpo  # noqa: E402

spec = json.loads(open(snakemake.input.spec).read())  # noqa: F821
judge, scenes = None, None
if snakemake.params.get("judge"):  # noqa: F821
    from mmalign.judges import make_judge

    judge = make_judge(snakemake.params.judge, cache_path=snakemake.params.judge_cache)  # noqa: F821
if snakemake.input.get("scenes"):  # noqa: F821
    with open(snakemake.input.scenes) as fh:  # noqa: F821
        scenes = {s["id"]: s for s in map(json.loads, fh)}
metrics = train_dpo(
    model_dir=snakemake.input.model,  # noqa: F821
    pairs_path=snakemake.input.pairs,  # noqa: F821
    out_dir=Path(snakemake.output.adapter).parent,  # noqa: F821
    settings=DPOSettings.from_spec(spec),
    use_cpu=not torch.cuda.is_available(),
    judge=judge,
    scenes=scenes,
)
write_json({"variant": spec["variant"], **metrics}, snakemake.output.metrics)  # noqa: F821
