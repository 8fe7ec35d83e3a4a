"""Evaluate one policy on one benchmark: batched greedy generation, raw outputs kept, scored by the
benchmark's own rule. Decoding settings are recorded beside the metrics."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from PIL import Image

from . import benchmarks
from .models import generate, load_policy
from .schema import read_jsonl, write_json

log = logging.getLogger(__name__)


def decoding_settings(spec: dict, module) -> dict:
    return {
        "do_sample": False,
        "max_new_tokens": spec.get("max_new_tokens") or module.DEFAULTS["max_new_tokens"],
        "batch_size": spec.get("batch_size", 32),
        "prompt_suffix": module.DEFAULTS["prompt_suffix"] if spec.get("prompt_suffix") is None else spec["prompt_suffix"],
    }


def evaluate(variant: str, benchmark: str, spec: dict, model_dir, adapter_dir, items_path, out_predictions,
             out_judgments, out_metrics, seed: int = 0) -> dict:
    module = benchmarks.get(spec["kind"])
    decoding = decoding_settings(spec, module)
    items = read_jsonl(items_path)
    model, processor = load_policy(model_dir, adapter_dir)
    prompts = [module.prompt(item, decoding["prompt_suffix"]) for item in items]
    images = [Image.open(item["image"]).convert("RGB") for item in items]
    start = time.time()
    answers = generate(model, processor, images, prompts, max_new_tokens=decoding["max_new_tokens"],
                       batch_size=decoding["batch_size"], seed=seed, progress=f"{variant}/{benchmark}")
    seconds = time.time() - start
    with open(out_predictions, "w") as fh:
        for item, prompt, text in zip(items, prompts, answers):
            fh.write(json.dumps({"id": item["id"], "subset": item["subset"], "prompt": prompt, "prediction": text}) + "\n")
    rows, judgments = module.score(items, answers)
    with open(out_judgments, "w") as fh:
        for j in judgments:
            fh.write(json.dumps(j) + "\n")
    result = {
        "variant": variant,
        "benchmark": benchmark,
        "kind": spec["kind"],
        "metrics": rows,
        "decoding": decoding,
        "items": len(items),
        "seconds": round(seconds, 3),
        "samples_per_second": round(len(items) / seconds, 2) if seconds else None,
        "adapter": str(adapter_dir) if adapter_dir else None,
    }
    write_json(result, out_metrics)
    log.info("%s on %s: %d items in %.1fs", variant, benchmark, len(items), seconds)
    return result
