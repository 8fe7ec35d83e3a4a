"""Where an offline training step's time goes, by kind of operator, for one variant of a finished study.

    .venv/bin/python benchmarks/step_profile.py --from DIR [--variant dpo_povid/seed0] [--steps 200] [--json OUT]

Trains the variant again from its ``spec.json`` for ``--steps`` steps (its first ``steps x batch_size`` pairs, one
epoch), in a temporary directory (DIR is read, never written), at one thread as the study's jobs run: once plain,
for the wall time of a step, and once under ``torch.profiler``, whose operators' own CPU time is summed by kind:

- matmul: ``mm``, ``addmm``, ``bmm`` (the arithmetic ``mmalign.train.arithmetic`` counts, with attention);
- attention: the fused scaled-dot-product kernels;
- elementwise and reductions: norms, rotary embeddings, activations, LoRA's scaling, the loss's log-softmax, casts
  and copies: ops that read and write whole activations and do a few FLOPs per value, so memory speed bounds them;
- data: the DataLoader's next batch (TRL's collator: chat template, tokenizer, image processor, padding);
- optimizer, convolution (the vision tower's patch embedding), and the rest (views, autograd's engine, Python).

The profiler slows the run (its wall time is not the step's); the operators' own times add up to about the plain
run's wall time, so the shares are the step's. Run it on an idle machine: see docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

MATMUL = {"aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::baddbmm", "aten::matmul"}
ELEMENTWISE = re.compile(
    r"^aten::(mul|add|sub|div|neg|pow|rsqrt|sqrt|exp|log|silu|gelu|sigmoid|tanh|where|clamp|mean|sum|copy|"
    r"_to_copy|fill|zero|cat|masked_select|masked_scatter|gather|scatter|index|embedding|_log_softmax|log_softmax|"
    r"logsumexp|softmax|_softmax|native_layer_norm|layer_norm|cumsum|max|min|eq|ne|lt|gt|abs|ones|zeros)"
)
KINDS = ("matmul", "elementwise and reductions", "attention", "data", "optimizer", "convolution", "other")


def kind_of(name: str) -> str:
    """The kind of a profiler event by its name (see the module docstring); a backward op is its forward's kind."""
    if "DataLoader" in name:
        return "data"
    if name.startswith("Optimizer.") or "_foreach_" in name:
        return "optimizer"
    if "scaled_dot_product" in name or "flash_attention" in name:
        return "attention"
    if "convolution" in name:
        return "convolution"
    op = name.removesuffix("_backward").removesuffix("_backward_data")
    if op in MATMUL:
        return "matmul"
    if ELEMENTWISE.match(op):
        return "elementwise and reductions"
    return "other"


def seconds_by_kind(events) -> dict[str, float]:
    """Own CPU seconds of the profiler's averaged events (``key``, ``self_cpu_time_total`` in us), by kind."""
    totals = dict.fromkeys(KINDS, 0.0)
    for event in events:
        totals[kind_of(event.key)] += event.self_cpu_time_total / 1e6
    return totals


def variant_inputs(study: Path, variant: str) -> tuple[dict, Path, Path, Path | None]:
    """The spec, base model, pair table and reference log-prob artifact of a trained variant of the study (run k of
    a replicated variant reads base model k's copies where the study made them)."""
    spec_path = study / "results" / "runs" / variant / "spec.json"
    if not spec_path.is_file():
        sys.exit(f"{spec_path}: no such run (give --variant as under results/runs/, e.g. dpo_povid/seed0)")
    spec = json.loads(spec_path.read_text())
    seed = re.search(r"/seed(\d+)$", variant)
    k = int(seed.group(1)) if seed else 0
    model = study / "resources" / "models" / (spec["base_model"] + (f"-seed{k}" if k else ""))
    own = f"seed{k}" if k else ""
    pairs = study / "results" / "pairs" / spec["pairset"] / own / "pairs.parquet"
    if not pairs.is_file():
        pairs = study / "results" / "pairs" / spec["pairset"] / "pairs.parquet"
    reference = study / "results" / "reference_logps" / spec["pairset"] / own / "logps.parquet"
    for path in (model, pairs):
        if not path.exists():
            sys.exit(f"{path}: missing (is {study} a finished study?)")
    return spec, model, pairs, reference if reference.is_file() else None


def train_steps(spec: dict, model: Path, pairs: Path, reference: Path | None, steps: int, profile: bool) -> dict:
    """Train ``steps`` steps of the variant's recipe; returns the wall time of ``trainer.train`` and, profiled,
    the operators' own seconds by kind."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile
    from transformers import Trainer

    from mmalign.train.dpo import train_dpo
    from mmalign.train.methods import get
    from mmalign.train.settings import DPOSettings

    settings = DPOSettings.from_spec(spec)
    if get(settings.method).module is not None:  # online, BDHS-online, distortion and RL runs have their own loops
        sys.exit(f"variant {spec['variant']!r}: method {settings.method!r}; this profiles offline runs (method dpo)")
    settings.max_pairs, settings.epochs, settings.min_steps = steps * settings.batch_size, 1, steps
    settings.checkpoint_steps = steps + 1  # no checkpoint inside the profiled steps
    measured: dict = {}
    train = Trainer.train

    def timed_train(trainer, *args, **kwargs):
        start = time.perf_counter()
        if not profile:
            result = train(trainer, *args, **kwargs)
        else:
            with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
                result = train(trainer, *args, **kwargs)
            measured["kinds"] = seconds_by_kind(prof.key_averages())
        measured["wall"] = time.perf_counter() - start
        return result

    Trainer.train = timed_train
    try:
        with tempfile.TemporaryDirectory() as out:
            metrics = train_dpo(model, pairs, out, settings, reference_logps=reference)
    finally:
        Trainer.train = train
    return {**measured, "steps": metrics["steps"], "flops_per_step": metrics["arithmetic"]["flops_per_step"]}


def report(variant: str, plain: dict, profiled: dict) -> dict:
    steps = plain["steps"]
    kinds = profiled["kinds"]
    total = sum(kinds.values())
    print(f"{variant}: {steps} steps, {1000 * plain['wall'] / steps:.1f} ms a step (plain run, one thread)")
    print(f"operators' own time under the profiler: {1000 * total / steps:.1f} ms a step")
    print(f"{'kind':<28} {'ms/step':>8} {'share':>7}")
    for kind in KINDS:
        print(f"{kind:<28} {1000 * kinds[kind] / steps:8.1f} {100 * kinds[kind] / total:6.1f}%")
    rate = plain["flops_per_step"] / (kinds["matmul"] + kinds["attention"]) * steps / 1e9
    print(f"matmul and attention: {plain['flops_per_step'] / 1e9:.2f} GFLOP a step at {rate:.1f} GFLOP/s")
    return {
        "variant": variant,
        "steps": steps,
        "ms_per_step": 1000 * plain["wall"] / steps,
        "profiled_ms_per_step": {k: 1000 * v / steps for k, v in kinds.items()},
        "flops_per_step": plain["flops_per_step"],
        "matmul_attention_gflops": rate,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="study", required=True, help="a finished study's directory (read only)")
    parser.add_argument("--variant", default="dpo_povid/seed0", help="a run under results/runs/ (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=200, help="steps to time and to profile (default: %(default)s)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the study's jobs (workflow/rules/common.smk)
    import torch

    torch.set_num_threads(1)  # as the study's training jobs run
    study = Path(args.study).resolve()
    json_out = Path(args.json).resolve() if args.json else None
    spec, model, pairs, reference = variant_inputs(study, args.variant)
    os.chdir(study)  # pair tables name their images relative to the study's directory
    plain = train_steps(spec, model, pairs, reference, args.steps, profile=False)
    profiled = train_steps(spec, model, pairs, reference, args.steps, profile=True)
    figures = report(args.variant, plain, profiled)
    if json_out:
        json_out.write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main()
