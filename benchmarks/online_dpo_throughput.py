"""Online training throughput on the default study's base model and POVID-analog prompts: pairs per second
and the share of the step time spent generating (sampling + judging, or BDHS), for Online-DPO, Mixed-DPO and
online BDHS, next to offline DPO on the same prompts.

    .venv/bin/python benchmarks/online_dpo_throughput.py [--workdir .] [--pairs 128] [--batch-size 16]

Run the default study first (snakemake --cores all) so that the model, pairs and scenes exist in --workdir.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=".", help="directory of a finished default-study run")
    parser.add_argument("--model", default="resources/models/tinyllava")
    parser.add_argument("--pairs", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args()
    workdir = Path(args.workdir).resolve()
    model_dir = workdir / args.model
    pairs_path, scenes_path = workdir / "results/pairs/povid/pairs.parquet", workdir / "results/world/scenes.jsonl"
    if not (model_dir.is_dir() and pairs_path.is_file() and scenes_path.is_file()):
        raise SystemExit(f"no model, pairs or scenes under {workdir}: run the default study there first")

    import torch

    from mmalign.judges import make_judge
    from mmalign.train.dpo import train_dpo
    from mmalign.train.settings import DPOSettings

    torch.set_num_threads(os.cpu_count() or 1)
    os.chdir(workdir)
    with open(scenes_path) as fh:
        scenes = {s["id"]: s for s in map(json.loads, fh)}
    common = dict(
        batch_size=args.batch_size,
        max_pairs=args.pairs,
        lora_r=16,
        lora_alpha=32,
        loss_type=["sigmoid", "sft"],
        loss_weights=[1.0, 0.5],
        learning_rate=3e-3,
        checkpoint_steps=10_000,
    )
    online = {"temperature": 1.0, "max_new_tokens": args.max_new_tokens}
    runs = {
        "dpo (offline)": DPOSettings(**common),
        "online_dpo": DPOSettings(method="online_dpo", online=online, **common),
        "mixed_dpo": DPOSettings(method="mixed_dpo", online=online, **common),
        "online_bdhs": DPOSettings(method="online_bdhs", rejected="policy", **common),
    }
    print(f"{args.pairs} prompts, batch {args.batch_size}, {torch.get_num_threads()} threads")
    print(f"{'method':<16}{'pairs/s':>10}{'seconds':>10}{'generation share':>18}  pairs made / dropped")
    for name, settings in runs.items():
        with tempfile.TemporaryDirectory() as out:
            judge = make_judge({"backend": "exact"}, Path(out) / "judgments.sqlite")
            m = train_dpo(model_dir, pairs_path, out, settings, use_cpu=True, judge=judge, scenes=scenes)
        counts = m.get("online", {})
        made = counts.get("pairs/online_pairs", 0) + counts.get("pairs/offline_pairs", 0)
        dropped = sum(v for k, v in counts.items() if k.startswith("pairs/dropped_"))
        share = f"{m['generation_share']:.1%}" if "generation_share" in m else "-"
        print(
            f"{name:<16}{m['pairs_per_second']:>10.2f}{m['train_seconds']:>10.1f}{share:>18}  "
            f"{made if counts else m['pairs']} / {dropped}"
        )


if __name__ == "__main__":
    main()
