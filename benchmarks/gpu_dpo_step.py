"""Benchmark: DPO steps and generation of LLaVA-1.6-7B (llava-hf/llava-v1.6-vicuna-7b-hf's architecture) on one GPU,
at the paper's shapes, with nothing downloaded.

    python benchmarks/gpu_dpo_step.py --json gpu_dpo_step.json          # one H100 / H200
    python benchmarks/gpu_dpo_step.py --tiny --json tiny.json           # CPU, the tiny LLaVA-NeXT: seconds

What runs, each phase's elapsed time printed. The GPU run is planned to finish in under 8 minutes (about 1 min of
setup, at most ``--train-seconds`` of timed steps per configuration after one warm-up step, under a minute of
generation); it has not run on a GPU yet, so the plan is an estimate:

1. Setup. A random-initialised LlavaNextForConditionalGeneration from ``benchmarks/models/llava-v1.6-vicuna-7b-hf/
   config.json`` (the repository's config.json with the Llama widths written out), built on the device in the
   resolved dtype (no 14 GB save or load). The processor is the repository's (``tests/rehearsal/
   tiny_llava_next.py``: 336 px AnyRes tiles, the real pinpoints and vicuna chat template) with a BPE tokenizer
   trained here on the benchmark's own words; ``image_token_index`` and the pad id follow that tokenizer.
   Precision, attention kernel and checkpointing come from ``mmalign.compute`` (``--dtype``, ``--attention``).
2. Training, per configuration (``--configs 1 4:gc``: pairs per device, ``:gc`` for gradient checkpointing):
   TRL's ``DPOTrainer`` with the project's adapter (``mmalign.train.lora.attach_lora``: LoRA r128 / alpha 256 on
   the language model's linear layers, the projector trained in full, the vision tower frozen) and optimizer
   (``mmalign.train.dpo.optimizer_groups``), the reference inline, the adapter disabled as the study's training
   runs it (``mmalign.train.reference.reference_by_disabled_adapter`` removes TRL 1.16's ``ref`` adapter copy).
   Pairs are a 672x672 image (AnyRes: 5 tiles, 2,928 image
   tokens), a short prompt, chosen and rejected answers of 50-100 tokens: ~3,040 positions per padded sequence.
   ``--global-batch`` pairs per optimizer step (the paper's 16), reached by accumulation
   (``mmalign.compute.micro_batches``). The first ``--warmup`` steps are not timed; then ``--steps`` steps, or
   fewer once ``--train-seconds`` have passed. Printed: seconds per step, pairs/s, positions/s (padding included:
   it is computed), peak GPU memory, model FLOPs per step (``mmalign.train.step_flops``), MFU and HFU against the
   device's dense bf16 peak (``--peak-tflops`` overrides; on CPU the measured float32 matmul rate). After the first
   configuration that trains, one micro-batch is counted with ``FlopCounterMode`` beside the formula
   (``--no-count`` skips).
3. Generation with ``generate`` (greedy, KV cache, left-padded batches of ``--gen-batch``): a POPE-like load
   (one-word answers, 3 new tokens: prefill-bound) and a description-like load (``--describe-tokens`` new tokens,
   forced with ``min_new_tokens``: a random model's EOS comes at random). Prefill is timed alone (one new token);
   decode tokens/s is what the longer run adds.
4. A SLURM hint: the measured seconds per pair scaled to one variant's training (``--hint-pairs``,
   ``--hint-epochs``, ``--hint-gpus``) and the memory seen, to replace the guesses in ``profiles/slurm/config.yaml``.

``--json FILE`` writes every figure. A configuration that runs out of GPU memory is reported as such and the run
goes on.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # rehearsal.tiny_llava_next: the repository's processor files
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# transformers 5.23 deprecates its gradient_checkpointing names and warns from inside the library at every use
warnings.filterwarnings("ignore", category=FutureWarning)

import torch  # noqa: E402

from mmalign.compute import Compute, ComputeError, Device, Resolved, micro_batches, resolve  # noqa: E402
from mmalign.train import step_flops  # noqa: E402

FULL_CONFIG = REPO / "benchmarks" / "models" / "llava-v1.6-vicuna-7b-hf" / "config.json"
GIB = 2**30

# Dense bf16 tensor-core peaks (TFLOP/s), by what torch.cuda.get_device_name says. An H100 that is neither SXM
# (HBM3) nor PCIe (the NVL) has no entry: pass --peak-tflops.
PEAK_TFLOPS = (
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100 80GB HBM3", 989.0),
    ("H100 SXM", 989.0),
    ("A100", 312.0),
)

# the pairs' words (the tokenizer is trained on them too)
VOCABULARY = (
    "the a image shows red blue green small large circle square dog cat car person table chair window left right "
    "top bottom near next to on in with and there is are two three sitting standing wooden bright dark background "
    "foreground street tree sky building grass water white black yellow"
)
WORDS = tuple(VOCABULARY.split())
OBJECTS = ("dog", "cat", "car", "person", "chair", "tree", "umbrella", "bicycle")
DESCRIBE = "Describe the image in detail."


@dataclass(frozen=True)
class Preset:
    """What --tiny changes: the model, the tile scale, the image, and sizes that keep a CPU run to seconds."""

    image_px: int
    answer_tokens: tuple[int, int]
    lora_r: int
    lora_alpha: int
    global_batch: int
    configs: tuple[str, ...]
    steps: int
    gen_batch: int
    describe_tokens: int
    device: str


FULL_PRESET = Preset(672, (50, 100), 128, 256, 16, ("1", "4:gc"), 3, 16, 256, "cuda")
# 56 px is 672 px at the tiny tile scale (28 px tiles for 336): the same 2x2 AnyRes grid and 5 tiles
TINY_PRESET = Preset(56, (6, 12), 8, 16, 4, ("1", "2:gc"), 2, 4, 16, "cpu")


@dataclass(frozen=True)
class RunConfig:
    """One measured training configuration."""

    per_device: int
    checkpointing: bool

    @classmethod
    def parse(cls, spec: str) -> RunConfig:
        pairs, _, flag = spec.partition(":")
        if flag not in ("", "gc") or not pairs.isdigit() or int(pairs) < 1:
            raise argparse.ArgumentTypeError(f"{spec!r}: a configuration is PAIRS or PAIRS:gc, e.g. 4:gc")
        return cls(int(pairs), flag == "gc")

    @property
    def name(self) -> str:
        return f"{self.per_device}/device" + (" +gc" if self.checkpointing else "")


# --------------------------------------------------------------------------------------------- the device


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_rate(size: int = 512, repeats: int = 20) -> float:
    """FLOP/s of a float32 matmul on this CPU with torch's threads as they are (the best of several timings)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def peak_flops(device: Device, override_tflops: float | None) -> tuple[float | None, str]:
    """The FLOP/s MFU divides by, and where the figure comes from."""
    if override_tflops:
        return override_tflops * 1e12, "--peak-tflops"
    if device.kind == "cpu":
        threads = torch.get_num_threads()
        return matmul_rate(), f"measured float32 matmul rate, {threads} thread(s)"
    for name, tflops in PEAK_TFLOPS:
        if name in device.name:
            return tflops * 1e12, f"dense bf16 peak of {name}"
    return None, f"no peak known for {device.name!r}: pass --peak-tflops"


def memory_now(device: str) -> dict:
    """Peak GPU memory since the last reset, and the process's peak resident memory (Linux reports KiB)."""
    host = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB
    figures = {"host_max_rss_gib": round(host, 2)}
    if device == "cuda":
        figures["gpu_peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / GIB, 2)
        figures["gpu_peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / GIB, 2)
    return figures


def reset_memory(device: str) -> None:
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


# ------------------------------------------------------------------------------- processor, model, pairs


def build_processor(tiny: bool, workdir: Path):
    """The repository's processor files (full-size tiles, or the tiny scale) beside a locally trained tokenizer."""
    from transformers import AutoProcessor

    from rehearsal.tiny_llava_next import FULL, TINY, train_tokenizer, write_processor_files

    texts = [" ".join(WORDS), DESCRIBE, *(f"Is there a {o} in the image? Answer yes or no." for o in OBJECTS)]
    tokenizer = train_tokenizer(texts, vocab_size=600)
    out = workdir / "processor"
    tokenizer.save_pretrained(out)
    write_processor_files(out, TINY if tiny else FULL)
    return AutoProcessor.from_pretrained(out)


def model_config(tiny: bool, tokenizer):
    """The tiny LLaVA-NeXT's config, or the 7B's from the repository file with the ids of this tokenizer (the
    model's vocabulary keeps its 32,064 rows: the compute is the real model's)."""
    from transformers import LlavaNextConfig

    from rehearsal.tiny_llava_next import tiny_config

    if tiny:
        return tiny_config(tokenizer)
    config = LlavaNextConfig.from_json_file(FULL_CONFIG)
    config.image_token_index = config.image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    config.text_config.pad_token_id = tokenizer.pad_token_id
    return config


def build_model(config, resolved: Resolved, tokenizer):
    """Random weights, built directly on the device in the resolved dtype."""
    from transformers import LlavaNextForConditionalGeneration

    torch.manual_seed(0)
    with torch.device(resolved.device):
        model = LlavaNextForConditionalGeneration._from_config(config, **resolved.model_kwargs())
    gen = model.generation_config
    gen.bos_token_id, gen.eos_token_id, gen.pad_token_id = (
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
    )
    return model


def parameter_count(config) -> int:
    """Parameters of the model a config describes, counted on the meta device (no memory)."""
    from transformers import LlavaNextForConditionalGeneration

    with torch.device("meta"):
        model = LlavaNextForConditionalGeneration._from_config(config)
    return sum(p.numel() for p in model.parameters())


def noise_image(px: int, rng):
    from PIL import Image

    return Image.fromarray(rng.integers(0, 256, (px, px, 3), dtype="uint8"))


def answer(tokenizer, rng, tokens: int) -> str:
    """Words until the text is ``tokens`` tokens long (give or take the last word's)."""
    words: list[str] = []
    while len(tokenizer(" ".join(words), add_special_tokens=False)["input_ids"]) < tokens:
        words.append(str(rng.choice(WORDS)))
    return " ".join(words)


def preference_rows(processor, count: int, preset: Preset, seed: int = 0):
    """A TRL vision preference dataset of ``count`` pairs, framed as the project frames training rows."""
    import numpy as np
    from datasets import Dataset

    from mmalign.train.chat_format import end_answers, frame_for_training

    rng = np.random.default_rng(seed)
    answer_end = frame_for_training(processor)  # BOS in the template, EOS after answers: as mmalign.train.dpo
    low, high = preset.answer_tokens
    rows = [
        {
            "image": noise_image(preset.image_px, rng),
            "prompt": [{"role": "user", "content": DESCRIBE}],
            "chosen": [{"role": "assistant", "content": answer(processor.tokenizer, rng, rng.integers(low, high + 1))}],
            "rejected": [
                {"role": "assistant", "content": answer(processor.tokenizer, rng, rng.integers(low, high + 1))}
            ],
        }
        for _ in range(count)
    ]
    return Dataset.from_list(end_answers(rows, answer_end))


# ---------------------------------------------------------------------------------------------- training


def float32_trainables(model) -> int:
    """Cast trainable parameters to float32 (PEFT keeps the projector's trainable copy in the base dtype; Adam
    states and updates of 5e-6 need float32). Idempotent: returns how many it cast (none once attach_lora casts)."""
    cast = 0
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
            cast += 1
    return cast


class StepClock:
    """Stamps every optimizer step's end (after a device sync), and stops training once the warm-up and at least
    one timed step are done and the time is up."""

    def __init__(self, device: str, warmup: int, deadline: float):
        from transformers import TrainerCallback

        clock = self
        self.device, self.warmup, self.deadline = device, warmup, deadline
        self.stamps: list[float] = []

        class Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                clock.stamps = [time.perf_counter()]

            def on_step_end(self, args, state, control, **kwargs):
                synchronize(clock.device)
                clock.stamps.append(time.perf_counter())
                if len(clock.stamps) > clock.warmup + 1 and time.perf_counter() > clock.deadline:
                    control.should_training_stop = True

        self.callback = Callback()

    def timed_steps(self) -> list[float]:
        """Seconds of each step after the warm-up: step end to step end, the data collation included."""
        ends = self.stamps[self.warmup :]
        return [b - a for a, b in zip(ends, ends[1:])]


def record_shapes(trainer, config, compact_lm_head: bool) -> dict[int, list]:
    """Wraps ``trainer.training_step`` (an instance attribute shadows the method) to keep each micro-batch's
    shapes under its optimizer step's index."""
    shapes: dict[int, list] = {}
    inner = trainer.training_step

    def training_step(model, inputs, *args, **kwargs):
        batch = step_flops.micro_batch(inputs, config, compact_lm_head)
        shapes.setdefault(trainer.state.global_step, []).append(batch)
        return inner(model, inputs, *args, **kwargs)

    trainer.training_step = training_step
    return shapes


def compact_lm_head(device: str) -> bool:
    """Whether TRL's log-prob head scores only completion positions here (it does where Triton runs)."""
    from trl.kernels.chunked_logprob import _use_triton

    return _use_triton(torch.device(device))


def dpo_trainer(model, processor, dataset, resolved: Resolved, run: RunConfig, args, settings, workdir: Path):
    """TRL's DPOTrainer as the project builds it (mmalign.train.dpo), the reference inline (adapter disabled)."""
    from transformers.trainer_callback import PrinterCallback
    from trl import DPOConfig, DPOTrainer

    from mmalign.train.dpo import optimizer_groups
    from mmalign.train.reference import reference_by_disabled_adapter

    per_device, accumulation = micro_batches(args.global_batch, run.per_device, args.processes)
    config = DPOConfig(
        output_dir=str(workdir / "trainer"),
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=accumulation,
        max_steps=args.warmup + args.steps,
        learning_rate=settings.learning_rate,
        lr_scheduler_type="constant",
        beta=settings.beta,
        loss_type=settings.loss_type,
        logging_steps=args.warmup + args.steps,
        save_strategy="no",
        report_to="none",
        use_cpu=resolved.device == "cpu",
        max_length=None,  # never truncate image tokens
        seed=0,
        dataloader_num_workers=0,
        disable_tqdm=True,
        **resolved.trainer_kwargs(),
    )
    trainer = DPOTrainer(
        model=model,
        ref_model=None,  # PEFT: the reference is the model with its adapter disabled, computed inline
        args=config,
        train_dataset=dataset,
        processing_class=processor,
        optimizers=(optimizer_groups(model, settings), None),
    )
    trainer.remove_callback(PrinterCallback)  # the benchmark prints its own figures
    reference_by_disabled_adapter(trainer)
    return trainer


def reference_kind(trainer) -> str:
    """How TRL computes this trainer's reference (mmalign.train.step_flops.REFERENCES)."""
    return "adapter" if "ref" in trainer.model.peft_config else "disabled"


def significant(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def step_figures(bench: Bench, trainer, run: RunConfig, shapes: dict[int, list], times: list[float]) -> dict:
    """Rates and FLOPs of the timed steps (those after the warm-up)."""
    timed = [shapes[i] for i in range(bench.args.warmup, bench.args.warmup + len(times))]
    flops = [bench.step_flops(batches, run, reference_kind(trainer)) for batches in timed]
    total = sum(flops, step_flops.Flops())
    seconds, steps = sum(times), len(times)
    pairs = sum(b.sequences for batches in timed for b in batches) // 2
    positions = sum(b.positions for batches in timed for b in batches)
    first = timed[0][0]
    return {
        "timed_steps": steps,
        "step_seconds": significant(seconds / steps),
        "pairs_per_second": significant(pairs / seconds),
        "seconds_per_pair": significant(seconds / pairs),
        "positions_per_second": significant(positions / seconds),
        "padded_length": first.length,
        "tiles_per_sequence": first.tiles // first.sequences,
        "model_flops_per_step": total.model // steps,
        "hardware_flops_per_step": total.hardware // steps,
        "model_flops_per_position": total.model // positions,
        "model_tflops_per_second": significant(total.model / seconds / 1e12),
        "mfu": significant(total.model / seconds / bench.peak) if bench.peak else None,
        "hfu": significant(total.hardware / seconds / bench.peak) if bench.peak else None,
        "flops_per_step_by_part": {k: v // steps for k, v in total.as_dict().items()},
    }


# -------------------------------------------------------------------------------------------- the bench


class Phases:
    """Elapsed seconds per phase, printed as each ends."""

    def __init__(self):
        self.start = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def done(self, name: str, since: float) -> None:
        self.seconds[name] = round(time.perf_counter() - since, 1)
        print(f"[{time.perf_counter() - self.start:6.1f} s] {name}: {self.seconds[name]} s", flush=True)


class Bench:
    """The processor, model config and pairs of one run, and the measurements made with them (each on a fresh
    model)."""

    def __init__(self, args, workdir: Path):
        from mmalign.train.settings import DPOSettings

        self.args = args
        self.workdir = workdir
        self.device = Device.detect(use_cpu=args.device == "cpu")
        if args.device == "cuda" and self.device.kind != "cuda":
            raise SystemExit("no CUDA device: the full-size benchmark needs a GPU (--tiny runs on a CPU)")
        self.compute = Compute(dtype=args.dtype, attention=args.attention)
        self.resolved = resolve(self.compute, self.device)
        self.settings = DPOSettings(
            lora_r=args.lora_r, lora_alpha=args.lora_alpha, learning_rate=5e-6, projector_learning_rate=2e-6
        )
        self.processor = build_processor(args.tiny, workdir)
        self.config = model_config(args.tiny, self.processor.tokenizer)
        self.arch = step_flops.Architecture.from_config(self.config)
        self.dataset = preference_rows(self.processor, args.global_batch, args.preset)
        self.compact_lm_head = compact_lm_head(self.resolved.device)
        self.peak, self.peak_source = peak_flops(self.device, args.peak_tflops)
        self.cast_to_float32 = 0  # trainable parameters the last trainer() cast (PEFT's base-dtype projector copy)

    def describe(self) -> dict:
        from rehearsal.tiny_llava_next import image_tokens_per_image

        px = self.args.preset.image_px
        return {
            "device": self.device.name,
            "resolved": asdict(self.resolved),
            "parameters": parameter_count(self.config),
            "image_px": px,
            "image_tokens": image_tokens_per_image(self.processor, [(px, px)])[0],
            "lm_head_scores": "completion positions" if self.compact_lm_head else "every position",
            "peak_tflops": significant(self.peak / 1e12) if self.peak else None,
            "peak_source": self.peak_source,
        }

    def step_flops(self, batches: list, run: RunConfig, reference: str | None) -> step_flops.Flops:
        return step_flops.dpo_step(
            self.arch,
            batches,
            self.settings.lora_r,
            reference=reference,
            checkpointing=run.checkpointing,
            fused_attention=self.resolved.attention != "eager",
        )

    # ------------------------------------------------------------------------------------------ training

    def fresh_model(self):
        """A new random model for every configuration: a trainer leaves state on its model (hooks that make the
        vision tower's output need gradients, patched forwards) that would change the next configuration's work."""
        return build_model(self.config, self.resolved, self.processor.tokenizer)

    def trainer(self, run: RunConfig):
        """A DPOTrainer on a fresh model with the project's adapter."""
        from mmalign.train.lora import attach_lora

        resolved = resolve(Compute(self.compute.dtype, self.compute.attention, run.checkpointing), self.device)
        policy = attach_lora(self.fresh_model(), self.settings)
        self.cast_to_float32 = float32_trainables(policy)
        return dpo_trainer(policy, self.processor, self.dataset, resolved, run, self.args, self.settings, self.workdir)

    def measure_training(self, run: RunConfig, count: bool) -> dict:
        args = self.args
        figures = {"configuration": run.name, "per_device": run.per_device, "checkpointing": run.checkpointing}
        reset_memory(self.resolved.device)
        start = time.perf_counter()
        trainer = self.trainer(run)
        figures["build_seconds"] = significant(time.perf_counter() - start)
        figures["trainables_cast_to_float32"] = self.cast_to_float32
        figures["accumulation"] = trainer.args.gradient_accumulation_steps
        clock = StepClock(self.resolved.device, args.warmup, time.perf_counter() + args.train_seconds)
        trainer.add_callback(clock.callback)
        shapes = record_shapes(trainer, self.config, self.compact_lm_head)
        figures["collate_seconds_per_pair"] = self.collate_seconds(trainer)
        try:
            trainer.train()
        except torch.OutOfMemoryError:
            figures["error"] = f"out of GPU memory at {run.per_device} pair(s) per device"
        else:
            figures |= step_figures(self, trainer, run, shapes, clock.timed_steps())
            figures |= memory_now(self.resolved.device)
            if count:
                try:
                    figures["flop_count"] = self.flop_count(trainer, run)
                except torch.OutOfMemoryError:  # the step figures stand; only the check is lost
                    figures["flop_count"] = {"error": "out of GPU memory while counting"}
        del trainer  # the model, its adapter, the optimizer's states: freed before the next configuration
        reset_memory(self.resolved.device)
        return figures

    def collate_seconds(self, trainer) -> float:
        """CPU seconds per pair of TRL's vision collator (image processing, tokenization): the main process does
        it inside every step (dataloader_num_workers 0, as mmalign.train.dpo)."""
        rows = [self.dataset[i] for i in range(min(4, len(self.dataset)))]
        start = time.perf_counter()
        trainer.data_collator(rows)
        return significant((time.perf_counter() - start) / len(rows))

    def flop_count(self, trainer, run: RunConfig, reference: bool = True) -> dict:
        """FlopCounterMode's count of one micro-batch's loss forward and backward, as the trainer's step runs it,
        beside the formula's hardware FLOPs of the same micro-batch. ``reference=False``: the reference
        log-probs are read from the batch (TRL's precomputed path) instead of computed."""
        from torch.utils.flop_counter import FlopCounterMode

        inputs = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
        batch = step_flops.micro_batch(inputs, self.config, self.compact_lm_head)
        precomputed = trainer.precompute_ref_logps
        if not reference:
            trainer.precompute_ref_logps = True
            pairs = batch.sequences // 2
            inputs["ref_chosen_logps"] = inputs["ref_rejected_logps"] = torch.zeros(pairs, device=trainer.args.device)
        trainer.model.train()
        try:
            with FlopCounterMode(display=False, custom_mapping=step_flops.counter_mapping()) as counter:
                with trainer.compute_loss_context_manager():
                    loss = trainer.compute_loss(trainer.model, inputs)
                trainer.accelerator.backward(loss)
        finally:
            trainer.precompute_ref_logps = precomputed
            trainer.model.zero_grad(set_to_none=True)
        counted = counter.get_total_flops()
        kind = reference_kind(trainer) if reference else None
        analytic = self.step_flops([batch], run, kind).hardware
        return {
            "reference": kind,
            "counted": counted,
            "analytic_hardware": analytic,
            "relative_difference": round(analytic / counted - 1, 6),
            "attention": self.resolved.attention,
        }

    # ---------------------------------------------------------------------------------------- generation

    def generation_batch(self, prompts: list[str]):
        import numpy as np

        from mmalign.models import user_message

        rng = np.random.default_rng(1)
        texts = [
            self.processor.apply_chat_template(user_message(p), add_generation_prompt=True, tokenize=False)
            for p in prompts
        ]
        bos = self.processor.tokenizer.bos_token
        batch = self.processor(
            images=[noise_image(self.args.preset.image_px, rng) for _ in prompts],
            text=texts,
            padding=True,
            padding_side="left",
            return_tensors="pt",
            add_special_tokens=not texts[0].startswith(bos),  # the training frame writes BOS itself
        ).to(self.resolved.device)
        batch["pixel_values"] = batch["pixel_values"].to(self.resolved.torch_dtype)
        return batch

    def timed_generate(self, model, batch, new_tokens: int) -> float:
        kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
        synchronize(self.resolved.device)
        start = time.perf_counter()
        out = model.generate(**batch, **kwargs, pad_token_id=self.processor.tokenizer.pad_token_id)
        synchronize(self.resolved.device)
        seconds = time.perf_counter() - start
        made = out.shape[1] - batch["input_ids"].shape[1]
        if made != new_tokens:
            raise RuntimeError(f"generate made {made} new tokens, {new_tokens} forced")
        return seconds

    @torch.no_grad()
    def measure_generation(self, model, name: str, prompts: list[str], new_tokens: int) -> dict:
        """Prefill timed alone (one new token), then ``new_tokens``; decode is what the longer run adds."""
        reset_memory(self.resolved.device)
        batch = self.generation_batch(prompts)
        rows, length = batch["input_ids"].shape
        self.timed_generate(model, batch, 1)  # warm-up: allocator, kernel selection
        prefill = self.timed_generate(model, batch, 1)
        whole = self.timed_generate(model, batch, new_tokens) if new_tokens > 1 else prefill
        # the prefill: one forward of the prompts, the head on each row's last position
        tiles = step_flops.image_tiles(batch["image_sizes"], self.config)
        prefill_flops = step_flops.forward(self.arch, step_flops.MicroBatch(rows, length, tiles, rows)).model
        figures = {
            "load": name,
            "batch": rows,
            "prompt_length": length,
            "new_tokens": new_tokens,
            "seconds": significant(whole),
            "samples_per_second": significant(rows / whole),
            "prefill_seconds": significant(prefill),
            "prefill_positions_per_second": significant(rows * length / prefill),
            "prefill_mfu": significant(prefill_flops / prefill / self.peak) if self.peak else None,
            "generated_tokens_per_second": significant(rows * new_tokens / whole),
        }
        if new_tokens > 1 and whole > prefill:
            figures["decode_tokens_per_second"] = significant(rows * (new_tokens - 1) / (whole - prefill))
        return figures | memory_now(self.resolved.device)


# -------------------------------------------------------------------------------------------- reporting


def slurm_hint(training: list[dict], args) -> dict:
    """The fastest configuration that fit, scaled to one variant's training on ``--hint-gpus`` GPUs (no allowance
    for FSDP's communication: a lower bound), with a 1.5x margin."""
    measured = [t for t in training if "seconds_per_pair" in t]
    if not measured:
        return {"note": "no configuration trained: nothing to suggest"}
    best = min(measured, key=lambda t: t["seconds_per_pair"])
    minutes = args.hint_pairs * args.hint_epochs * best["seconds_per_pair"] / args.hint_gpus / 60
    return {
        "configuration": best["configuration"],
        "seconds_per_pair": best["seconds_per_pair"],
        "pairs": args.hint_pairs,
        "epochs": args.hint_epochs,
        "gpus": args.hint_gpus,
        "train_minutes_at_measured_rate": round(minutes, 1),
        "suggested_runtime_minutes": math.ceil(1.5 * minutes),
        "gpu_peak_allocated_gib": best.get("gpu_peak_allocated_gib"),
        "host_max_rss_gib": best.get("host_max_rss_gib"),
    }


def print_training(t: dict) -> None:
    if "error" in t:
        print(f"  {t['configuration']:>12}: {t['error']}")
        return
    mfu = f"{t['mfu']:.1%}" if t["mfu"] is not None else "n/a"
    hfu = f"{t['hfu']:.1%}" if t["hfu"] is not None else "n/a"
    memory = f"{t['gpu_peak_allocated_gib']} GiB GPU" if "gpu_peak_allocated_gib" in t else "GPU n/a"
    print(
        f"  {t['configuration']:>12} (x{t['accumulation']} accumulation): {t['step_seconds']} s/step over "
        f"{t['timed_steps']} step(s), {t['pairs_per_second']} pairs/s ({t['seconds_per_pair']} s/pair), "
        f"{t['positions_per_second']:.0f} positions/s at {t['padded_length']} per sequence; "
        f"{t['model_flops_per_step'] / 1e12:.4g} TFLOP/step model, {t['hardware_flops_per_step'] / 1e12:.4g} "
        f"hardware ({t['model_flops_per_position'] / 1e9:.4g} GFLOP/position); MFU {mfu}, "
        f"HFU {hfu}; peak {memory}, host max RSS {t['host_max_rss_gib']} GiB; "
        f"collator {t['collate_seconds_per_pair']} s/pair"
    )
    c = t.get("flop_count")
    if c and "error" in c:
        print(f"  {'':>12}  FlopCounterMode: {c['error']}")
    elif c:
        print(
            f"  {'':>12}  FlopCounterMode, one micro-batch: {c['counted'] / 1e12:.6g} TFLOP counted, "
            f"{c['analytic_hardware'] / 1e12:.6g} by the formula ({c['relative_difference']:+.3%}; attention "
            f"{c['attention']})"
        )


def print_generation(g: dict) -> None:
    decode = f", decode {g['decode_tokens_per_second']} tokens/s" if "decode_tokens_per_second" in g else ""
    mfu = f" (MFU {g['prefill_mfu']:.1%})" if g["prefill_mfu"] is not None else ""
    print(
        f"  {g['load']:>12}: batch {g['batch']} x {g['prompt_length']} positions, {g['new_tokens']} new tokens: "
        f"{g['seconds']} s, {g['samples_per_second']} samples/s; prefill {g['prefill_seconds']} s = "
        f"{g['prefill_positions_per_second']:.0f} positions/s{mfu}; {g['generated_tokens_per_second']} generated "
        f"tokens/s{decode}"
    )


def print_hint(hint: dict) -> None:
    if "note" in hint:
        print(f"SLURM hint: {hint['note']}")
        return
    print(
        f"SLURM hint (profiles/slurm/config.yaml, set-resources.train): {hint['pairs']} pairs x {hint['epochs']} "
        f"epochs at {hint['seconds_per_pair']} s/pair ({hint['configuration']}) on {hint['gpus']} GPU(s) = "
        f"{hint['train_minutes_at_measured_rate']} min without communication; runtime: "
        f'"{hint["suggested_runtime_minutes"]} * attempt" with a 1.5x margin. GPU memory peaked at '
        f"{hint['gpu_peak_allocated_gib'] or 'n/a'} GiB (per_device_batch_size); host max RSS "
        f"{hint['host_max_rss_gib']} GiB "
        "(this run builds the model on the device: loading from disk, as the workflow does, is not measured)"
    )


# ------------------------------------------------------------------------------------------------- main


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="the tiny LLaVA-NeXT, scaled tiles, on the CPU")
    parser.add_argument("--device", choices=("cuda", "cpu"), help="default: cuda, or cpu with --tiny")
    parser.add_argument("--dtype", default="auto", help="compute.dtype (auto: bfloat16 on a GPU, float32 on a CPU)")
    parser.add_argument("--attention", default="auto", help="compute.attention (auto: flash_attention_2 or sdpa)")
    parser.add_argument("--configs", nargs="+", type=RunConfig.parse, help="PAIRS[:gc] per device (1 4:gc)")
    parser.add_argument("--global-batch", type=int, help="pairs per optimizer step (16, the paper's)")
    parser.add_argument("--processes", type=int, default=1, help="this GPU takes the share of one of these")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--steps", type=int, help="timed steps per configuration (3)")
    parser.add_argument("--train-seconds", type=float, default=100.0, help="stop timing a configuration after")
    parser.add_argument("--lora-r", type=int)
    parser.add_argument("--lora-alpha", type=int)
    parser.add_argument("--no-count", dest="count", action="store_false", help="skip the FlopCounterMode check")
    parser.add_argument("--gen-batch", type=int, help="generation batch (16)")
    parser.add_argument("--describe-tokens", type=int, help="new tokens of the description load (256)")
    parser.add_argument("--peak-tflops", type=float, help="the device's peak, instead of the table")
    parser.add_argument("--hint-pairs", type=int, default=17_000, help="SLURM hint: pairs of a variant (POVID)")
    parser.add_argument("--hint-epochs", type=float, default=3.0, help="SLURM hint: epochs (variant_defaults)")
    parser.add_argument("--hint-gpus", type=int, default=8, help="SLURM hint: GPUs of the train job")
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args(argv)
    preset = TINY_PRESET if args.tiny else FULL_PRESET
    args.preset = preset
    args.device = args.device or preset.device
    args.configs = args.configs or [RunConfig.parse(c) for c in preset.configs]
    for key in ("global_batch", "steps", "lora_r", "lora_alpha", "gen_batch", "describe_tokens"):
        if getattr(args, key) is None:
            setattr(args, key, getattr(preset, key))
    for run in args.configs:  # a configuration that cannot reach the global batch fails now, not after the setup
        try:
            micro_batches(args.global_batch, run.per_device, args.processes, key=f"--configs {run.per_device}")
        except ComputeError as error:
            parser.error(str(error))
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    phases = Phases()
    figures: dict = {"arguments": {k: v for k, v in vars(args).items() if k not in ("preset", "configs")}}
    figures["arguments"]["configs"] = [asdict(c) for c in args.configs]
    with tempfile.TemporaryDirectory(prefix="gpu-dpo-step-") as workdir:
        start = time.perf_counter()
        bench = Bench(args, Path(workdir))
        figures["setup"] = bench.describe()
        phases.done("setup (processor, model on the device, pairs)", start)
        s = figures["setup"]
        print(
            f"{'tiny LLaVA-NeXT' if args.tiny else 'LLaVA-1.6-7B'} ({s['parameters']:,} parameters) on "
            f"{s['device']}: {s['resolved']['dtype']}, {s['resolved']['attention']}; {s['image_px']} px images = "
            f"{s['image_tokens']} image tokens; LM head scores {s['lm_head_scores']}; peak "
            f"{s['peak_tflops']} TFLOP/s ({s['peak_source']})"
        )
        figures["training"] = []
        for run in args.configs:
            start = time.perf_counter()
            # the FlopCounterMode check once, on the first configuration that trains (one may not fit)
            counted = any("flop_count" in t for t in figures["training"])
            result = bench.measure_training(run, count=args.count and not counted)
            figures["training"].append(result)
            phases.done(f"train {run.name}", start)
            print_training(result)
        figures["generation"] = []
        loads = [
            ("pope-like", [f"Is there a {OBJECTS[i % len(OBJECTS)]} in the image? Answer yes or no." for i in
                           range(args.gen_batch)], 3),
            ("description", [DESCRIBE] * args.gen_batch, args.describe_tokens),
        ]  # fmt: skip
        model = bench.fresh_model().eval()  # the plain model, as evaluation has it (adapters merged)
        for name, prompts, new_tokens in loads:
            start = time.perf_counter()
            try:
                result = bench.measure_generation(model, name, prompts, new_tokens)
            except torch.OutOfMemoryError:
                result = {"load": name, "error": f"out of GPU memory at batch {args.gen_batch}"}
            figures["generation"].append(result)
            phases.done(f"generate {name}", start)
            if "error" in result:
                print(f"  {name}: {result['error']}")
            else:
                print_generation(result)
    figures["slurm_hint"] = slurm_hint(figures["training"], args)
    print_hint(figures["slurm_hint"])
    figures["phase_seconds"] = phases.seconds
    figures["total_seconds"] = round(time.perf_counter() - phases.start, 1)
    print(f"total: {figures['total_seconds']} s")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main()
