"""Evaluate one policy on one benchmark: batched greedy generation, raw outputs kept, scored by the
benchmark's own rule (and its judge, for judged benchmarks). Decoding settings, the judge and throughput are
recorded beside the metrics. Items without an image or a reference answer are skipped and counted.

``evaluate_suite`` runs several benchmarks with one policy loaded once (config ``evaluation.jobs: per_variant``):
on the tiny default-study model, starting Python and loading the model cost more than most benchmarks."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from PIL import Image

from mmalign.judges import check_budget, make_judge
from mmalign.models import generate, load_policy
from mmalign.provenance import run_environment
from mmalign.schema import read_jsonl, write_json

from . import benchmarks
from .items import source_module

log = logging.getLogger(__name__)


DEFAULT_BATCH_SIZE = 32  # config benchmarks.<name>.batch_size


def decoding_settings(spec: dict, module, source=None) -> dict:
    """Greedy decoding; prompt suffix and answer length from the spec, else the source's defaults (the synthetic
    world's language), else the benchmark's."""
    defaults = {**module.DEFAULTS, **(getattr(source, "DEFAULTS", {}).get(spec["kind"], {}))}
    return {
        "do_sample": False,
        "max_new_tokens": spec.get("max_new_tokens") or defaults["max_new_tokens"],
        "batch_size": spec.get("batch_size", DEFAULT_BATCH_SIZE),
        "prompt_suffix": defaults["prompt_suffix"] if spec.get("prompt_suffix") is None else spec["prompt_suffix"],
    }


def score(kind: str, items: list[dict], answers: list[str], judge, source) -> tuple[list[dict], list[dict]]:
    """The benchmark's scorer, with its judge (judged kinds) and the source's answer reader (if it has one)."""
    module = benchmarks.get(kind)
    kwargs = {"judge": judge} if module.JUDGED else {}
    reader = getattr(source, "READERS", {}).get(kind)
    if reader is not None:
        kwargs["reader"] = reader
    return module.score(items, answers, **kwargs)


def usable_items(items: list[dict]) -> tuple[list[dict], dict[str, int]]:
    """Items with an image on disk and a reference answer; the others are counted by reason."""
    kept, skipped = [], {"skipped_no_image": 0, "skipped_no_reference": 0}
    for item in items:
        if not item.get("image") or not Path(item["image"]).is_file():
            skipped["skipped_no_image"] += 1
        elif not str(item.get("answer") or "").strip():
            skipped["skipped_no_reference"] += 1
        else:
            kept.append(item)
    for reason, count in skipped.items():
        if count:
            log.warning("%d items skipped: %s", count, reason)
    return kept, skipped


def evaluate(
    variant: str,
    benchmark: str,
    spec: dict,
    model_dir,
    adapter_dir,
    items_path,
    out_predictions,
    out_judgments,
    out_metrics,
    seed: int = 0,
    judge_spec: dict | None = None,
    judge_cache=None,
    judge_model_dir=None,
    policy=None,
    compute: dict | None = None,
) -> dict:
    """`policy`: a (model, processor) the caller loaded and keeps (evaluate_suite); else loaded here and freed
    before a local judge model loads. `compute`: the config's compute section (precision, attention)."""
    module = benchmarks.get(spec["kind"])
    source = source_module(spec)
    decoding = decoding_settings(spec, module, source)
    items, skipped = usable_items(read_jsonl(items_path))
    if not items:
        raise ValueError(f"{benchmark}: no usable items in {items_path} ({skipped})")
    if module.JUDGED and not judge_spec:
        raise ValueError(f"benchmark {benchmark!r} (kind {spec['kind']}) is scored by a judge: set its 'judge'")
    # A judge behind an endpoint is made now, so that an unset environment variable stops the job before any
    # generation is paid for; a local judge model loads only after the policy is freed.
    judge = None
    if module.JUDGED and not judge_model_dir:
        judge = make_judge(judge_spec, judge_cache)
    model, processor = policy or load_policy(model_dir, adapter_dir, compute)
    prompts = [module.prompt(item, decoding["prompt_suffix"]) for item in items]
    images = [Image.open(item["image"]).convert("RGB") for item in items]
    start = time.time()
    answers = generate(
        model,
        processor,
        images,
        prompts,
        max_new_tokens=decoding["max_new_tokens"],
        batch_size=decoding["batch_size"],
        seed=seed,
        progress=f"{variant}/{benchmark}",
        answer_complete=getattr(module, "answer_complete", None),  # POPE: stop once the first word is read
    )
    seconds = time.time() - start
    with open(out_predictions, "w") as fh:
        for item, prompt, text in zip(items, prompts, answers):
            fh.write(
                json.dumps({"id": item["id"], "subset": item["subset"], "prompt": prompt, "prediction": text}) + "\n"
            )
    del model  # our reference only: a policy loaded here is freed before a local judge model loads
    judge_start = time.time()
    if module.JUDGED and judge is None:
        judge = make_judge(judge_spec, judge_cache, model_dir=judge_model_dir)
    rows, judgments = score(spec["kind"], items, answers, judge, source)
    judge_seconds = time.time() - judge_start
    if module.JUDGED:  # over budget: the job fails here and publishes nothing; the cache keeps every answer
        check_budget(spec.get("judge") or judge.judge_id, judge_spec, judgments, f"{variant} on {benchmark}")
    rows += [{"subset": "all", "metric": reason, "value": float(count)} for reason, count in skipped.items()]
    with open(out_judgments, "w") as fh:
        for j in judgments:
            fh.write(json.dumps(j) + "\n")
    total = seconds + judge_seconds
    result = {
        "variant": variant,
        "benchmark": benchmark,
        "kind": spec["kind"],
        "metrics": rows,
        "decoding": {**decoding, "stops_when_parsed": hasattr(module, "answer_complete")},
        "judge": {"id": judge.judge_id, **judge_spec} if judge else None,  # env var names, never their values
        "items": len(items),
        "skipped": skipped,
        "seconds": round(seconds, 3),
        "samples_per_second": round(len(items) / seconds, 2) if seconds else None,
        "judge_seconds": round(judge_seconds, 3),
        "eval_samples_per_second": round(len(items) / total, 2) if total else None,
        "adapter": str(adapter_dir) if adapter_dir else None,
        "environment": run_environment(),
    }
    write_json(result, out_metrics)
    log.info(
        "%s on %s: %d items, generation %.1fs, judging %.1fs (%.1f items/s)",
        variant,
        benchmark,
        len(items),
        seconds,
        judge_seconds,
        result["eval_samples_per_second"] or 0,
    )
    return result


def evaluate_suite(
    variant: str, runs: dict[str, dict], model_dir, adapter_dir, seed: int = 0, judge_cache=None, compute=None
) -> dict:
    """Evaluate one policy on several benchmarks, loading it once. `runs` maps a benchmark name to the keyword
    arguments of `evaluate` that differ per benchmark: spec, items_path, out_predictions, out_judgments,
    out_metrics, judge_spec, judge_model_dir. Same outputs as one `evaluate` call per benchmark."""
    policy = load_policy(model_dir, adapter_dir, compute)
    results = {}
    for benchmark, run in runs.items():
        results[benchmark] = evaluate(
            variant,
            benchmark,
            model_dir=model_dir,
            adapter_dir=adapter_dir,
            seed=seed,
            judge_cache=judge_cache,
            policy=policy,
            **run,
        )
    return results
