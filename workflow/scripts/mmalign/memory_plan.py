"""How much GPU memory a job of the study needs: weights, trained weights with their gradients and Adam state,
activations kept for the backward pass, the logits of the loss, and a generation's KV cache.

Parameter counts come from the model's own configuration (the model built on PyTorch's ``meta`` device, so a 7B
plan allocates nothing). Activation and logit bytes are *measured*, not taken from a formula: one and two
decoder layers of the configuration's real width (and its real LM head and TRL's log-softmax) run forward on a
few hundred tokens on the CPU, LoRA attached as training attaches it, and every tensor autograd saves for the
backward pass is counted once (``torch.autograd.graph.saved_tensors_hooks``, storages deduplicated). Two layers
minus one is a layer's bytes per token; one layer minus that is what the embedding, the head and the loss keep.
Saved tensors scale linearly with tokens for an attention kernel that keeps no seq x seq matrix (SDPA's flash and
memory-efficient kernels, FlashAttention-2): that is the assumption, and the tests check it on the tiny model.

What is not counted: the CUDA context and allocator fragmentation (``OVERHEAD_GB``, a round figure), optimizer
state of frozen weights (none), and the vision tower's activations (frozen, nothing before it trains: no
backward through it, and its forward on 5 tiles of 577 tokens is small next to the language model's).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from mmalign.train.step_flops import Architecture

GB = 1e9
OVERHEAD_GB = 3.0  # CUDA context, cuBLAS workspaces, allocator fragmentation: a round figure, not measured here
ADAM_BYTES_PER_TRAINED_PARAM = 16  # float32 weight, gradient, and Adam's two moments
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class ModelShapes:
    """What a LLaVA(-NeXT) configuration says about memory: parameter counts, and its widths as the FLOP count
    reads them (``mmalign.train.step_flops.Architecture``: one reading of a configuration for both)."""

    parameters: int
    projector_parameters: int
    arch: Architecture
    text_config: dict  # the language model's configuration, to build probe layers of its real width

    @classmethod
    def from_config(cls, config) -> ModelShapes:
        import torch
        from transformers import AutoModelForImageTextToText

        with torch.device("meta"):
            model = AutoModelForImageTextToText.from_config(config)
        projector = sum(p.numel() for n, p in model.named_parameters() if "multi_modal_projector" in n)
        return cls(
            parameters=sum(p.numel() for p in model.parameters()),
            projector_parameters=projector,
            arch=Architecture.from_config(config),
            text_config=config.get_text_config().to_dict(),
        )

    @classmethod
    def from_file(cls, path: str | Path) -> ModelShapes:
        from transformers import AutoConfig

        path = Path(path)
        return cls.from_config(AutoConfig.from_pretrained(path.parent if path.is_file() else path))

    @property
    def layers(self) -> int:
        return self.arch.text_layers

    @property
    def hidden(self) -> int:
        return self.arch.text_hidden

    def lora_parameters(self, rank: int) -> int:
        """LoRA's A and B of every targeted linear layer of the language model: rank x (in + out) each."""
        return self.layers * self.arch.lora_weights(rank)

    def kv_cache_bytes(self, sequences: int, tokens: int, dtype_bytes: int) -> int:
        """Keys and values of every layer for ``sequences`` sequences of ``tokens`` positions each."""
        per_position = 2 * self.layers * self.arch.kv_heads * self.arch.head_dim * dtype_bytes
        return per_position * sequences * tokens


@dataclass(frozen=True)
class ActivationBytes:
    """Bytes autograd keeps per token of a training forward: per decoder layer, at a layer's boundary (what
    gradient checkpointing keeps of a layer), and for the rest (embedding, final norm, head, log-softmax)."""

    per_layer: float
    boundary: float
    rest: float


def _saved_bytes(model, run) -> int:
    """Bytes of the distinct storages autograd saves for the backward pass while ``run()`` computes, the model's
    own weights left out (a linear layer saves its weight, which is memory the weights already count)."""
    import torch

    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run()
    return sum(storages.values())


def _probe_model(text_config: dict, layers: int, lora_rank: int, dtype):
    """A causal LM of the configuration's real width with ``layers`` decoder layers, LoRA on its linear layers
    (float32, as PEFT makes them) over frozen weights of ``dtype``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(**{**text_config, "num_hidden_layers": layers})
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    lora = LoraConfig(r=lora_rank, lora_alpha=2 * lora_rank, target_modules=list(LORA_TARGETS), lora_dropout=0.0)
    return get_peft_model(model, lora)


def _training_forward_bytes(model, tokens: int) -> int:
    """Saved bytes of one sequence's forward and TRL's per-token log-probs (its selective log-softmax)."""
    import torch
    from trl.trainer.utils import selective_log_softmax

    ids = torch.randint(0, model.config.vocab_size, (1, tokens))

    def run():
        logits = model(input_ids=ids, use_cache=False).logits
        selective_log_softmax(logits[:, :-1].float(), ids[:, 1:]).sum()

    return _saved_bytes(model, run)


@cache
def measure_activation_bytes(text_config_json: str, dtype_name: str, lora_rank: int, tokens: int = 256):
    """ActivationBytes of the configuration, measured on the CPU (module docstring). Cached per process."""
    import torch

    text_config, dtype = json.loads(text_config_json), getattr(torch, dtype_name)
    one = _training_forward_bytes(_probe_model(text_config, 1, lora_rank, dtype), tokens)
    two = _training_forward_bytes(_probe_model(text_config, 2, lora_rank, dtype), tokens)
    per_layer = (two - one) / tokens
    boundary = text_config["hidden_size"] * torch.finfo(dtype).bits // 8  # a layer's input, one per token
    return ActivationBytes(per_layer=per_layer, boundary=boundary, rest=one / tokens - per_layer)


def activation_bytes(shapes: ModelShapes, dtype: str, lora_rank: int) -> ActivationBytes:
    return measure_activation_bytes(json.dumps(shapes.text_config, sort_keys=True), dtype, lora_rank)


def training_plan(
    shapes: ModelShapes,
    acts: ActivationBytes,
    *,
    tokens_per_sequence: int,
    pairs_per_device: float,
    lora_rank: int,
    dtype_bytes: int = 2,
    checkpointing: bool = True,
    shards: int = 1,
) -> dict[str, float]:
    """GB per device of a preference-training step (chosen and rejected: two sequences per pair). ``shards``:
    GPUs a fully sharded run (FSDP, ZeRO-3) spreads the weights and the trained state over."""
    tokens = 2 * pairs_per_device * tokens_per_sequence
    trained = shapes.lora_parameters(lora_rank) + shapes.projector_parameters
    if checkpointing:  # every layer's input, plus one layer's full activations while it is recomputed
        layer_bytes = tokens * (shapes.layers * acts.boundary + acts.per_layer)
    else:
        layer_bytes = tokens * shapes.layers * acts.per_layer
    plan = {
        "weights": shapes.parameters * dtype_bytes / shards / GB,
        "trained state": trained * ADAM_BYTES_PER_TRAINED_PARAM / shards / GB,
        "activations": layer_bytes / GB,
        "logits and loss": tokens * acts.rest / GB,
        "overhead": OVERHEAD_GB,
    }
    return {**plan, "total": sum(plan.values())}


def forward_plan(
    shapes: ModelShapes, *, sequences: int, prompt_tokens: int, new_tokens: int = 0, dtype_bytes: int = 2
) -> dict[str, float]:
    """GB of a forward pass without gradients over ``sequences`` sequences (generation, scoring, the reference
    pre-pass): the weights, the KV cache at the longest sequence (generation only), and the working set of one
    layer over every position at once, the prefill's peak: the residual stream and a layer's input, and the MLP's
    gate, up and product (``(2*D + 3*F) x dtype`` bytes a position; attention's q, k, v, out are fewer). Nothing
    is kept for a backward pass, and generation computes the logits of the last position only."""
    inner = shapes.arch.text_intermediate
    plan = {
        "weights": shapes.parameters * dtype_bytes / GB,
        "working set": sequences * prompt_tokens * (2 * shapes.hidden + 3 * inner) * dtype_bytes / GB,
        "overhead": OVERHEAD_GB,
    }
    if new_tokens:
        plan["kv cache"] = shapes.kv_cache_bytes(sequences, prompt_tokens + new_tokens, dtype_bytes) / GB
    return {**plan, "total": sum(plan.values())}


def max_image_tokens(config) -> int:
    """The most ``<image>`` tokens one image can take in a LLaVA-NeXT prompt: the base tile's features, plus the
    AnyRes grid's at the largest pinpoint with one image-newline feature per row (unpadding only removes some).
    A LLaVA (1.5) configuration: the base tile's features alone."""
    vision = config.vision_config
    side = vision.image_size // vision.patch_size
    base = side * side
    pinpoints = getattr(config, "image_grid_pinpoints", None)
    if not pinpoints:
        return base
    grids = [(h // vision.image_size * side, w // vision.image_size * side) for h, w in pinpoints]
    return base + max(rows * cols + rows for rows, cols in grids)


def largest_batch_that_fits(plan_for_batch, gpu_gb: float, limit: int = 256) -> int:
    """The largest batch whose plan (``plan_for_batch(b) -> dict`` with "total") fits ``gpu_gb``; 0 if none."""
    best = 0
    for batch in range(1, limit + 1):
        if plan_for_batch(batch)["total"] > gpu_gb:
            break
        best = batch
    return best


def gb(value: float) -> str:
    return f"{value:.1f}" if math.isfinite(value) else "n/a"


# ------------------------------------------------------------------------------------- a study's jobs, planned

PROMPT_TEXT_TOKENS = 64  # a question and the chat template around it (an assumption, stated in the report)


def _row(rule: str, what: str, batch: str, plan: dict, gpu_gb: float, largest: int | None = None) -> dict:
    return {
        "rule": rule,
        "what": what,
        "batch": batch,
        **{k: round(v, 1) for k, v in plan.items()},
        "fits": plan["total"] <= gpu_gb,
        "largest batch that fits": largest,
    }


def study_plan(config: dict, model_config, gpu_gb: float = 80.0, answer_tokens: int = 300) -> list[dict]:
    """Per-GPU memory of every GPU job of a study config (defaults applied), at its configured batch sizes, in
    bfloat16 (2 bytes), for the base model ``model_config`` (a transformers config of the study's base model).
    ``answer_tokens``: the length assumed for a preference pair's answers (the data sets' answers vary)."""
    from mmalign.compute import micro_batches
    from mmalign.evaluate import benchmarks
    from mmalign.evaluate.run import decoding_settings
    from mmalign.train.reference import BATCH_SIZE

    shapes = ModelShapes.from_config(model_config)
    prompt = max_image_tokens(model_config) + PROMPT_TEXT_TOKENS
    pair_tokens = prompt + answer_tokens
    gradient_checkpointing = bool((config.get("compute") or {}).get("gradient_checkpointing"))
    rows = []

    def train_rows(rule, name, per_device, lora_r, tokens, head=True, unit="pair(s)", per_unit=1):
        acts = activation_bytes(shapes, "bfloat16", lora_r)
        if not head:  # a reward model's scalar head: no vocabulary-wide logits
            acts = ActivationBytes(acts.per_layer, acts.boundary, 0.0)

        def plan(batch):
            return training_plan(
                shapes, acts, tokens_per_sequence=tokens, pairs_per_device=batch * per_unit, lora_rank=lora_r,
                checkpointing=gradient_checkpointing,
            )  # fmt: skip

        largest = largest_batch_that_fits(plan, gpu_gb)
        rows.append(_row(rule, name, f"{per_device} {unit} / device", plan(per_device), gpu_gb, largest))

    seen = set()
    for name, variant in config["variants"].items():
        method = variant["method"]
        if method in ("rloo", "ppo"):
            rl = {**variant.get("rl", {})}
            completions = rl["batch_size"] // rl.get("gradient_accumulation_steps", 1)
            tokens = prompt + rl.get("max_completion_length", 256)
            key = (method, completions, tokens, rl.get("lora_r", 16))
            if key not in seen:
                seen.add(key)
                # a completion is one sequence, half a pair
                train_rows(
                    "train", f"{method} ({name})", completions, rl.get("lora_r", 16), tokens, True, "completions", 0.5
                )
            continue
        per_device, _ = micro_batches(variant["batch_size"], variant.get("per_device_batch_size"), 1)
        online = variant.get("online") or {}
        tokens = prompt + (online.get("max_new_tokens", answer_tokens) if method != "dpo" else answer_tokens)
        key = (method if online else "offline", per_device, tokens, variant.get("lora_r", 16))
        if key not in seen:
            seen.add(key)
            train_rows("train", f"{method} ({name})", per_device, variant.get("lora_r", 16), tokens)
    plan = forward_plan(shapes, sequences=2 * BATCH_SIZE, prompt_tokens=pair_tokens)
    rows.append(_row("reference_logps", "reference forward, no gradient", f"{BATCH_SIZE} pairs", plan, gpu_gb))
    for name, spec in config.get("benchmarks", {}).items():
        decoding = decoding_settings(spec, benchmarks.get(spec["kind"]))
        batch, new = decoding["batch_size"], decoding["max_new_tokens"]

        def generation(b, new=new):
            return forward_plan(shapes, sequences=b, prompt_tokens=prompt, new_tokens=new)

        largest = largest_batch_that_fits(generation, gpu_gb)
        rows.append(
            _row("evaluate", f"{name}: {new} new tokens", f"{batch} answers", generation(batch), gpu_gb, largest)
        )
    for name, spec in config.get("pairsets", {}).items():
        if spec.get("kind") == "bdhs":
            batch = spec.get("batch_size", 64)
            plan = forward_plan(shapes, sequences=batch, prompt_tokens=pair_tokens, new_tokens=96)
            rows.append(_row("build_bdhs_pairs", f"{name}: guided answers", f"{batch} answers", plan, gpu_gb))
    for name, spec in (config.get("reward_models") or {}).items():
        per_device, _ = micro_batches(spec.get("batch_size", 32), spec.get("per_device_batch_size"), 1)
        train_rows("train_reward_model", name, per_device, spec.get("lora_r", 16), pair_tokens, head=False)
        plan = forward_plan(shapes, sequences=2 * spec.get("score_batch_size", 8), prompt_tokens=pair_tokens)
        rows.append(_row("eval_reward_model", name, f"{spec.get('score_batch_size', 8)} pairs", plan, gpu_gb))
        break  # every reward model has the same shapes unless its settings differ: one row each rule
    return rows


def main(argv: list[str] | None = None) -> int:
    """``python -m mmalign.memory_plan CONFIG [--model-config DIR]``: the per-GPU memory of every GPU job."""
    import argparse

    import pandas as pd
    import yaml
    from transformers import AutoConfig

    from mmalign.config import apply_defaults

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("config", help="a study config, e.g. config/paper.yaml")
    parser.add_argument(
        "--model-config",
        default="benchmarks/models/llava-v1.6-vicuna-7b-hf",
        help="a directory with the base model's config.json (default: llava-v1.6-vicuna-7b's, in the repository)",
    )
    parser.add_argument("--gpu-gb", type=float, default=80.0, help="memory of one GPU (H100: 80)")
    parser.add_argument("--answer-tokens", type=int, default=300, help="assumed length of a pair's answers")
    parser.add_argument("--csv", help="also write the table here")
    args = parser.parse_args(argv)
    config = yaml.safe_load(Path(args.config).read_text())
    apply_defaults(config)
    rows = study_plan(config, AutoConfig.from_pretrained(args.model_config), args.gpu_gb, args.answer_tokens)
    order = ["rule", "what", "batch", "weights", "trained state", "activations", "logits and loss", "kv cache",
             "working set", "overhead", "total", "fits", "largest batch that fits"]  # fmt: skip
    table = pd.DataFrame(rows, columns=order, dtype=object).fillna("")
    print(f"GPU memory per device (GB, bfloat16), against {args.gpu_gb:g} GB; overhead {OVERHEAD_GB:g} GB assumed")
    print(table.to_string(index=False))
    if args.csv:
        table.to_csv(args.csv, index=False)
    return 0 if table["fits"].all() else 1


if __name__ == "__main__":
    raise SystemExit(main())
