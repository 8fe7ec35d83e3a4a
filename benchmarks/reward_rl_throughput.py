"""Reward-model and RL throughput on the default study's base model and POVID-analog pairs: RM training pairs per
second (chosen + rejected = two sequences a pair), RM scoring pairs per second, and RLOO / PPO samples per second
(completions generated, scored by the RM and trained on).

    .venv/bin/python benchmarks/reward_rl_throughput.py [--workdir .] [--rm-steps 60] [--rl-steps 10]

Run the default study (or its reward-model part) first, so that the model and the POVID analog's pairs exist in
--workdir. Run it on an otherwise idle machine: the figures are wall-clock rates.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=".", help="directory of a finished default-study run")
    parser.add_argument("--model", default="resources/models/tinyllava")
    parser.add_argument("--pairs", default="results/pairs/povid/pairs.parquet")
    parser.add_argument("--rm-steps", type=int, default=60)
    parser.add_argument("--rm-batch-size", type=int, default=16)
    parser.add_argument("--rl-steps", type=int, default=10)
    parser.add_argument("--rl-batch-size", type=int, default=32, help="completions per step (prompts x k)")
    parser.add_argument("--max-completion-length", type=int, default=48)
    args = parser.parse_args()
    workdir = Path(args.workdir).resolve()
    model_dir, pairs_path = workdir / args.model, workdir / args.pairs
    if not (model_dir.is_dir() and pairs_path.is_file()):
        raise SystemExit(f"no model or pairs under {workdir}: run the default study there first")

    import torch

    from mmalign.reward.accuracy import reward_accuracy
    from mmalign.reward.model import load_reward_model, reward_scores
    from mmalign.reward.train import RewardSettings, train_reward_model
    from mmalign.schema import read_pairs
    from mmalign.train.rl import train_rl
    from mmalign.train.rl_settings import RLSettings

    torch.set_num_threads(os.cpu_count() or 1)
    os.chdir(workdir)
    print(f"{torch.get_num_threads()} threads, {os.cpu_count()} cores; model {model_dir.name}")
    with tempfile.TemporaryDirectory() as scratch:
        rm_dir = Path(scratch) / "rm"
        settings = RewardSettings(
            learning_rate=1e-3, steps=args.rm_steps, batch_size=args.rm_batch_size, heldout_share=0.0,
            min_train_accuracy=0.0, logging_steps=10,
        )  # fmt: skip
        m = train_reward_model(model_dir, pairs_path, rm_dir, settings)
        print(f"RM training:  {m['pairs_per_second']:8.1f} pairs/s  ({m['steps']} steps of {args.rm_batch_size} pairs, "
              f"{m['train_seconds']:.1f} s; train accuracy {m['train_accuracy']['accuracy']:.3f})")  # fmt: skip
        rm, processor = load_reward_model(model_dir, rm_dir / "adapter")
        table = read_pairs(pairs_path).head(256)
        start = time.time()
        scored = reward_accuracy(rm, processor, table, batch_size=32)
        seconds = time.time() - start
        print(f"RM scoring:   {scored['pairs'] / seconds:8.1f} pairs/s  ({scored['pairs']} pairs, {seconds:.1f} s)")
        score = partial(reward_scores, rm, processor)
        for method in ("rloo", "ppo"):
            rl = RLSettings(
                method=method, learning_rate=1e-3, batch_size=args.rl_batch_size, num_generations=4,
                max_steps=args.rl_steps, max_completion_length=args.max_completion_length, ppo_epochs=1,
            )  # fmt: skip
            r = train_rl(model_dir, pairs_path, Path(scratch) / method, rl, score)
            print(f"{method.upper():<5} train:  {r['samples_per_second']:8.1f} samples/s  ({r['steps']} steps of "
                  f"{args.rl_batch_size} samples, {r['train_seconds']:.1f} s; stable: {r['stable']})")  # fmt: skip


if __name__ == "__main__":
    main()
