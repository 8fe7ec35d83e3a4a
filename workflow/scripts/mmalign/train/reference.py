"""Reference log-probabilities computed once per unique pair: a pre-pass with its own cached artifact.

DPO compares the policy's log-probability of each answer with the reference policy's. The reference never
changes during a run, yet TRL recomputes it at every step of every epoch (its own ``precompute_ref_log_probs``
refuses vision datasets), and variants that share a pair set and a base model (DPO / IPO / SLiC on one set)
recompute the same rows again. ``compute_reference_logps`` (rule ``reference_logps``) runs the reference forward
once per row of a pair table, with TRL's own collator and ``DPOTrainer.compute_ref_log_probs`` on the base model
with a fresh LoRA adapter disabled: exactly the reference a PEFT run uses. A training run then reads the values
(``precompute_for_run``) and ``PrecomputedReferenceDPOTrainer`` takes them from the batch instead of running
the reference forward.

A row is keyed by its image path and its prompt, chosen and rejected text as the trainer sees them (after the
chat framing of ``mmalign.train.chat_format``). The artifact records a fingerprint of what its numbers depend
on: the base model's files, the pair table's bytes and the code that computes them (the modules that make,
frame and score the rows, and the versions of torch, transformers, TRL and PEFT). A run whose fingerprint
differs never reads it: it logs why and scores its rows itself. A pair set that only one variant reads has no
artifact: that run scores its rows in its own process (``precompute_for_run``), which on a CPU costs less than
starting another process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from functools import cache
from pathlib import Path

import torch

from mmalign.compute import resolve_here

from .ranks import world_size

log = logging.getLogger(__name__)

COLUMNS = ("ref_chosen_logps", "ref_rejected_logps")
BATCH_SIZE = 32  # pairs per reference forward (no gradient: larger than a training batch)


def row_key(image: str, prompt: str, chosen: str, rejected: str) -> str:
    return hashlib.sha256(json.dumps([str(image), prompt, chosen, rejected]).encode()).hexdigest()


def dataset_keys(dataset) -> list[str]:
    """The key of every row of a TRL vision preference dataset (image paths read without decoding)."""
    from datasets import Image as ImageFeature

    plain = dataset.cast_column("image", ImageFeature(decode=False))
    return [
        row_key(row["image"]["path"], row["prompt"][0]["content"], row["chosen"][0]["content"],
                row["rejected"][0]["content"])
        for row in plain.select_columns(["image", "prompt", "chosen", "rejected"])
    ]  # fmt: skip


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


@cache
def model_fingerprint(model_dir: str) -> str:
    """The base model's files. A downloaded model has a manifest of its files' sha256 (mmalign.hub): that is
    read instead of hashing gigabytes again."""
    model_dir = Path(model_dir)
    manifest = model_dir.with_name(model_dir.name + ".manifest.json")
    if manifest.is_file():
        return hashlib.sha256(manifest.read_bytes()).hexdigest()
    digest = hashlib.sha256()
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(model_dir).as_posix()}\0{_file_digest(path)}\n".encode())
    return digest.hexdigest()


# the modules whose code the numbers depend on: how rows are made and framed, and how they are scored
CODE = ("reference.py", "rows.py", "chat_format.py", "lora.py")


def code_fingerprint() -> str:
    """This code's version (the bytes of ``CODE``) and the versions of the packages that compute the numbers."""
    import peft
    import transformers
    import trl

    digest = hashlib.sha256()
    for name in CODE:
        digest.update(name.encode() + b"\0" + (Path(__file__).parent / name).read_bytes())
    versions = {"torch": torch, "transformers": transformers, "trl": trl, "peft": peft}
    return " ".join([digest.hexdigest()[:16], *(f"{name} {module.__version__}" for name, module in versions.items())])


def fingerprint(model_dir, pairs_path, dtype: str = "float32") -> dict:
    """What the numbers depend on; ``dtype``: the precision the reference ran in (a bfloat16 run reads only
    bfloat16 values: the two differ by far more than rounding order)."""
    return {
        "base_model": model_fingerprint(str(model_dir)),
        "pairs": _file_digest(Path(pairs_path)),
        "code": code_fingerprint(),
        "dtype": dtype,
    }


def reference_trainer(model_dir, processor, dataset, out_dir: str, batch_size: int, resolved=None):
    """A DPOTrainer on the base model with a fresh LoRA adapter (disabled for the reference forward), set up as
    a training run sets it up, so its collator and ``compute_ref_log_probs`` are the ones training uses.
    ``resolved``: the job's ``mmalign.compute.Resolved`` (precision, attention; default: this device's auto)."""
    from transformers import AutoModelForImageTextToText
    from trl import DPOConfig, DPOTrainer

    from .lora import attach_lora
    from .settings import DPOSettings

    resolved = resolved or resolve_here(None)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, **resolved.model_kwargs())
    model = attach_lora(model, DPOSettings())  # its B matrices are zero, and it is disabled for the reference
    precision = {k: v for k, v in resolved.trainer_kwargs().items() if k in ("bf16", "fp16")}
    args = DPOConfig(
        output_dir=out_dir, per_device_train_batch_size=batch_size, report_to="none",
        use_cpu=resolved.device == "cpu", gradient_checkpointing=False, max_length=None,
        dataloader_num_workers=0, **precision,
    )  # fmt: skip
    trainer = DPOTrainer(model=model, ref_model=None, args=args, train_dataset=dataset, processing_class=processor)
    reference_by_disabled_adapter(trainer)
    return trainer


def rejected_mode(pairs_path) -> str:
    """Which rejected answers the scores cover: the external one, and the policy-derived one where every pair
    has it (BDHS sets), so that every variant of the pair table finds its rows."""
    from mmalign.schema import read_pairs

    frame = read_pairs(pairs_path)
    has_policy = "rejected_policy" in frame and frame["rejected_policy"].fillna("").astype(bool).all()
    return "both" if has_policy else "external"


def table_rows(pairs_path, answer_end: str):
    """Every distinct row a variant of the pair table can train on, framed as training frames them: (dataset,
    keys). ``answer_end``: what ``chat_format.frame_for_training`` returned for the run's processor."""
    from .chat_format import end_answers
    from .rows import preference_dataset

    dataset = preference_dataset(pairs_path, None, 0, rejected=rejected_mode(pairs_path))
    if answer_end:
        dataset = dataset.map(lambda row: end_answers([row], answer_end)[0])
    keys = dataset_keys(dataset)
    first: dict[str, int] = {}
    for index, key in enumerate(keys):
        first.setdefault(key, index)
    return dataset.select(list(first.values())), list(first)


def score_rows(trainer, collator, rows, keys: list[str], batch_size: int = BATCH_SIZE):
    """The reference log-probs of ``rows`` by ``trainer.compute_ref_log_probs`` (its model, adapter disabled), in
    batches of ``batch_size`` in table order: a table (key, ref_chosen_logps, ref_rejected_logps)."""
    import pandas as pd
    from tqdm import tqdm

    chosen, rejected = [], []
    for start in tqdm(range(0, len(rows), batch_size), desc="reference log-probs", mininterval=5):
        batch = collator([rows[i] for i in range(start, min(start + batch_size, len(rows)))])
        batch = {k: v.to(trainer.accelerator.device) if hasattr(v, "to") else v for k, v in batch.items()}
        c, r = trainer.compute_ref_log_probs(trainer.model, batch)
        chosen.append(c.float().cpu())
        rejected.append(r.float().cpu())
    return pd.DataFrame({"key": keys, COLUMNS[0]: torch.cat(chosen).numpy(), COLUMNS[1]: torch.cat(rejected).numpy()})


def compute_reference_logps(model_dir, pairs_path, out_path, batch_size: int = BATCH_SIZE, compute=None) -> dict:
    """Write ``out_path`` (parquet: key, ref_chosen_logps, ref_rejected_logps) and its fingerprint beside it
    (``<out_path>.json``); returns the fingerprint record. ``compute``: the config's compute section."""
    from transformers import AutoProcessor

    from .chat_format import frame_for_training

    processor = AutoProcessor.from_pretrained(model_dir)
    rows, keys = table_rows(pairs_path, frame_for_training(processor))
    with tempfile.TemporaryDirectory() as tmp:
        resolved = resolve_here(compute)
        trainer = reference_trainer(model_dir, processor, rows, tmp, batch_size, resolved)
        table = score_rows(trainer, trainer.data_collator, rows, keys, batch_size)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out_path, index=False)
    mode = rejected_mode(pairs_path)
    record = {
        **fingerprint(model_dir, pairs_path, resolved.dtype),
        "rows": len(table),
        "rejected": mode,
        "batch_size": batch_size,
    }
    Path(f"{out_path}.json").write_text(json.dumps(record, indent=2) + "\n")
    log.info("%s: reference log-probs of %d rows (%s rejected answers)", pairs_path, len(table), mode)
    return record


def recompute_reference_logps(model_dir, pairs_path, out_dir, batch_size: int = 8, seed: int = 1) -> dict:
    """TRL's reference forward over a pair table as a training run does it inline: shuffled batches of
    ``batch_size`` (another composition than the pre-pass's). {row key: (chosen, rejected)}; a check of an
    artifact (tests, and anyone doubting one)."""
    from transformers import AutoProcessor

    from .chat_format import frame_for_training

    processor = AutoProcessor.from_pretrained(model_dir)
    rows, keys = table_rows(pairs_path, frame_for_training(processor))
    trainer = reference_trainer(model_dir, processor, rows, str(out_dir), batch_size)
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed)).tolist()
    found = {}
    for start in range(0, len(order), batch_size):
        picked = order[start : start + batch_size]
        chosen, rejected = trainer.compute_ref_log_probs(
            trainer.model, trainer.data_collator([rows[i] for i in picked])
        )
        found.update({keys[i]: (c, r) for i, c, r in zip(picked, chosen.tolist(), rejected.tolist())})
    return found


class StaleReferenceError(RuntimeError):
    """A reference log-prob artifact that does not cover the rows of the run it was made for."""


def read_reference_logps(reference_path, model_dir, pairs_path, dtype: str = "float32"):
    """The artifact's table, or None when it was made for another base model, pair table, code version or
    precision (logged: the run then scores the rows itself)."""
    import pandas as pd

    reference_path = Path(reference_path)
    record_path = Path(f"{reference_path}.json")
    made_for = json.loads(record_path.read_text()) if record_path.is_file() else {}
    wanted = fingerprint(model_dir, pairs_path, dtype)
    stale = [k for k, v in wanted.items() if made_for.get(k) != v]
    if stale:
        log.warning(
            "%s was made for another %s: not used; this run computes its reference log-probs itself",
            reference_path,
            " and ".join(stale),
        )
        return None
    return pd.read_parquet(reference_path)


def attach_reference_logps(dataset, table, source="reference log-probs"):
    """The dataset with its rows' reference log-probs from ``table`` (every row must be there)."""
    table = table.set_index("key")
    keys = dataset_keys(dataset)
    missing = sum(k not in table.index for k in keys)
    if missing:
        raise StaleReferenceError(
            f"{source}: {missing} of the run's {len(keys)} rows have no reference log-probs although its "
            "fingerprint matches; delete it and rerun the rule reference_logps"
        )
    values = table.loc[keys]
    for column in COLUMNS:
        dataset = dataset.add_column(column, values[column].tolist())
    return dataset


def precompute_for_run(trainer, pairs_path, model_dir, answer_end: str, reference_path=None, dtype="float32") -> str:
    """Give a ``PrecomputedReferenceDPOTrainer`` its rows' reference log-probs before it trains: read from the
    pair set's artifact when there is a valid one, else scored here by the run's own model (its adapter, still
    zero, disabled; one process only). Returns where they came from; "inline" means they were not given, and
    the trainer must then compute them at every step (``trainer.precompute_ref_logps = False``)."""
    table = read_reference_logps(reference_path, model_dir, pairs_path, dtype) if reference_path else None
    source = "artifact"
    if table is None and world_size() > 1:  # the model is not on its devices before train() (FSDP, DeepSpeed)
        log.warning("no valid reference log-prob artifact for a %d-process run: computed inline", world_size())
        return "inline"
    if table is None:
        rows, keys = table_rows(pairs_path, answer_end)
        table = score_rows(trainer, trainer.vision_collator, rows, keys)
        source = "this run" if reference_path is None else "this run (stale artifact)"
    trainer.train_dataset = attach_reference_logps(trainer.train_dataset, table, str(reference_path or pairs_path))
    return source


def reference_by_disabled_adapter(trainer) -> None:
    """Make a DPO trainer score the reference with the adapter disabled, as PEFT's reference is meant to be.

    TRL 1.16, given a PeftModel and no reference model, adds a "ref" adapter copying the fresh one and scores the
    reference with it. A fresh LoRA adapter (B = 0) and the projector's untrained copy compute exactly the base
    model, which the disabled adapter computes too, without a second adapter and projector in memory (1.3 GB for
    7B at r128) or LoRA in every reference forward (1.3% of a step). Without the copy TRL disables the adapter
    (``use_adapter(model, None)``): its own path for a model whose adapter cannot be copied."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    if "ref" in (getattr(model, "peft_config", None) or {}):
        model.delete_adapter("ref")


def precomputed_reference_trainer_class():
    """A DPOTrainer that reads the reference log-probs from each batch (built lazily: importing this module
    does not import TRL). TRL's own precomputed path is switched on after its vision-dataset refusal; the
    collator passes the two columns through, as TRL's text collator does."""
    from trl import DPOTrainer

    class PrecomputedReferenceDPOTrainer(DPOTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.precompute_ref_logps = True  # _compute_loss reads inputs["ref_*_logps"]
            self.vision_collator = self.data_collator  # TRL's, for scoring rows (precompute_for_run)
            self.data_collator = with_reference_columns(self.data_collator)

        def _set_signature_columns_if_needed(self):
            super()._set_signature_columns_if_needed()
            self._signature_columns = [*self._signature_columns, *COLUMNS]

    return PrecomputedReferenceDPOTrainer


def with_reference_columns(collator):
    def collate(examples):
        values = {c: torch.tensor([e.pop(c) for e in examples], dtype=torch.float32) for c in COLUMNS}
        return {**collator(examples), **values}

    return collate
