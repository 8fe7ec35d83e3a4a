"""Reference log-probs computed once per pair table (mmalign.train.reference): equal to TRL's inline ones,
read by plain DPO, and never read when made for another base model, pair table or code version."""

from __future__ import annotations

import json
import logging
import shutil

import pandas as pd
import pytest
import torch

from mmalign.train import reference
from mmalign.train.dpo import preference_dataset, train_dpo
from mmalign.train.settings import DPOSettings

SETTINGS = dict(batch_size=8, max_pairs=16, lora_r=4, lora_alpha=8, logging_steps=1, learning_rate=0.05)


@pytest.fixture(scope="module")
def artifact(tiny_model, pairs, tmp_path_factory):
    model_dir, _ = tiny_model
    out = tmp_path_factory.mktemp("reference") / "logps.parquet"
    record = reference.compute_reference_logps(model_dir, pairs, out)
    return out, record


def test_precomputed_reference_logps_equal_the_inline_ones(tiny_model, pairs, artifact, tmp_path):
    model_dir, _ = tiny_model
    path, record = artifact
    table = pd.read_parquet(path).set_index("key")
    inline = reference.recompute_reference_logps(model_dir, pairs, tmp_path)
    assert len(table) == record["rows"] == len(inline) > 16
    # equal up to float32 rounding of a sum of token log-probs: 1e-5, relative for sums beyond 1 nat (a float32
    # sum near -150 nats has a resolution of 1.5e-5)
    for key, (chosen, rejected) in inline.items():
        assert table.loc[key, "ref_chosen_logps"] == pytest.approx(chosen, rel=1e-5, abs=1e-5)
        assert table.loc[key, "ref_rejected_logps"] == pytest.approx(rejected, rel=1e-5, abs=1e-5)
    assert table.ref_chosen_logps.lt(0).all() and table.ref_rejected_logps.lt(0).all()  # log-probs of answers


def test_a_dpo_run_reading_them_trains_as_one_recomputing_them(tiny_model, pairs, artifact, tmp_path):
    model_dir, _ = tiny_model
    path, _ = artifact
    from safetensors.torch import load_file

    runs = {
        "artifact": train_dpo(model_dir, pairs, tmp_path / "artifact", DPOSettings(**SETTINGS), reference_logps=path),
        "this run": train_dpo(model_dir, pairs, tmp_path / "this run", DPOSettings(**SETTINGS)),
        "inline": train_dpo(model_dir, pairs, tmp_path / "inline", DPOSettings(**SETTINGS, reference_logps="inline")),
    }
    assert {k: v["reference_logps"] for k, v in runs.items()} == {k: k for k in runs}
    assert {v["steps"] for v in runs.values()} == {2}
    adapters = {k: load_file(tmp_path / k / "adapter" / "adapter_model.safetensors") for k in runs}
    # the artifact and the run's own pre-pass score the same rows in the same batches: the same run, bit for bit
    assert all(torch.equal(adapters["artifact"][k], adapters["this run"][k]) for k in adapters["artifact"])
    # TRL's inline forward: equal up to float rounding
    assert runs["artifact"]["train_loss"] == pytest.approx(runs["inline"]["train_loss"], abs=1e-5)
    assert all(torch.allclose(adapters["artifact"][k], adapters["inline"][k], atol=1e-5) for k in adapters["inline"])
    # the reference forward is not run: the counted arithmetic of a step is smaller
    assert runs["artifact"]["arithmetic"]["flops_per_step"] < 0.8 * runs["inline"]["arithmetic"]["flops_per_step"]


def test_only_the_methods_that_train_on_fixed_pairs_read_them():
    from mmalign.train.methods import METHODS

    assert [m for m in METHODS if METHODS[m].precomputed_reference] == ["dpo"]
    with pytest.raises(ValueError, match="reference_logps"):
        DPOSettings(reference_logps="sometimes")


def changed_copy(src, dest, edit):
    shutil.copytree(src, dest) if src.is_dir() else shutil.copy(src, dest)
    edit(dest)
    return dest


@pytest.mark.parametrize("what", ["base_model", "pairs", "code"])
def test_an_artifact_made_for_another_base_model_pair_table_or_code_is_not_used(
    tiny_model, pairs, artifact, tmp_path, monkeypatch, caplog, what
):
    model_dir, _ = tiny_model
    path, _ = artifact
    if what == "base_model":  # the same model with one weight changed
        from safetensors.torch import load_file, save_file

        def nudge(model):
            weights = load_file(model / "model.safetensors")
            name = next(iter(weights))
            weights[name] = weights[name] + 1e-3
            save_file(weights, model / "model.safetensors", metadata={"format": "pt"})

        model_dir = changed_copy(model_dir, tmp_path / "model", nudge)
    elif what == "pairs":  # one chosen answer edited

        def edit(table_path):
            frame = pd.read_parquet(table_path)
            frame.loc[0, "chosen"] = frame.loc[0, "chosen"] + " yes"
            frame.to_parquet(table_path, index=False)

        pairs = changed_copy(pairs, tmp_path / "pairs.parquet", edit)
    else:  # a new version of the code that computes them
        monkeypatch.setattr(reference, "code_fingerprint", lambda: "another version")
    with caplog.at_level(logging.WARNING, logger="mmalign.train.reference"):
        assert reference.read_reference_logps(path, model_dir, pairs) is None
    assert f"made for another {what}" in caplog.text
    metrics = train_dpo(model_dir, pairs, tmp_path / "run", DPOSettings(**SETTINGS), reference_logps=path)
    assert metrics["reference_logps"] == "this run (stale artifact)"  # scored again, never read


def test_an_artifact_missing_rows_of_its_own_table_fails_naming_it(tiny_model, pairs, artifact, tmp_path):
    model_dir, _ = tiny_model
    path, _ = artifact
    truncated = tmp_path / "logps.parquet"
    pd.read_parquet(path).iloc[:3].to_parquet(truncated, index=False)
    shutil.copy(f"{path}.json", f"{truncated}.json")
    table = reference.read_reference_logps(truncated, model_dir, pairs)
    with pytest.raises(reference.StaleReferenceError, match="logps.parquet.*rerun the rule reference_logps"):
        reference.attach_reference_logps(preference_dataset(pairs, None, 0), table, str(truncated))


def test_the_fingerprint_names_what_the_numbers_depend_on(artifact):
    _, record = artifact
    assert set(record) >= {"base_model", "pairs", "code", "rows", "rejected"}
    assert "torch" in record["code"] and "trl" in record["code"]
    assert json.loads(open(f"{artifact[0]}.json").read()) == record


def test_the_reference_is_the_model_with_its_adapter_disabled_and_scores_as_trls_adapter_copy(
    tiny_model, pairs, tmp_path
):
    from transformers import AutoProcessor

    from mmalign.train.chat_format import frame_for_training

    model_dir, _ = tiny_model
    processor = AutoProcessor.from_pretrained(model_dir)
    rows, _ = reference.table_rows(pairs, frame_for_training(processor))
    trainer = reference.reference_trainer(model_dir, processor, rows, str(tmp_path), 8)
    model = trainer.accelerator.unwrap_model(trainer.model)
    assert list(model.peft_config) == ["default"]  # TRL's "ref" copy is gone: nothing held twice
    trained = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trained and all(".default." in n for n in trained)  # still the adapter and the projector copy train
    batch = trainer.data_collator([rows[i] for i in range(8)])
    disabled = trainer.compute_ref_log_probs(trainer.model, batch)
    # TRL's own way: a "ref" adapter copying the fresh one (LoRA B = 0, the projector untrained)
    model.add_adapter("ref", model.peft_config["default"])
    for name, param in model.named_parameters():
        if ".default." in name:
            model.get_parameter(name.replace(".default.", ".ref.")).data.copy_(param.data)
    copied = trainer.compute_ref_log_probs(trainer.model, batch)
    assert all(torch.equal(a, b) for a, b in zip(disabled, copied))  # the same numbers, bit for bit
