"""Offline DPO with TRL + PEFT: a training step changes the adapter and the projector and logs a loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mmalign.train.dpo import train_dpo
from mmalign.train.settings import DPOSettings

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("loss_type", [["sigmoid"], ["ipo"], ["hinge"], ["sigmoid", "sft"]])
def test_dpo_step_changes_adapter_and_projector_and_logs_loss(tiny_model, pairs, tmp_path, loss_type):
    from transformers import AutoModelForImageTextToText

    model_dir, _ = tiny_model
    settings = DPOSettings(
        loss_type=loss_type,
        loss_weights=[1.0, 0.5] if len(loss_type) == 2 else None,
        learning_rate=0.05,
        projector_learning_rate=0.05,
        batch_size=8,
        max_pairs=16,
        lora_r=4,
        lora_alpha=8,
        logging_steps=1,
    )
    metrics = train_dpo(model_dir, pairs, tmp_path, settings)
    assert metrics["steps"] == 2
    log = [json.loads(line) for line in open(tmp_path / "train_log.jsonl")]
    assert any("loss" in e and e["loss"] == e["loss"] for e in log)
    adapter = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # LoRA B starts at zero: nonzero means it trained
    base = AutoModelForImageTextToText.from_pretrained(model_dir).state_dict()
    projector = {k: v for k, v in adapter.items() if "multi_modal_projector" in k}
    assert projector
    changed = [
        not torch.allclose(v, base[k.replace("base_model.model.", "").replace(".modules_to_save.default", "")])
        for k, v in projector.items()
        if k.replace("base_model.model.", "").replace(".modules_to_save.default", "") in base
    ]
    assert changed and any(changed)


def test_loss_weights_must_match_loss_types():
    with pytest.raises(ValueError, match="loss_weights"):
        DPOSettings(loss_type=["sigmoid"], loss_weights=[1.0, 0.5])


def test_min_steps_repeats_a_small_pair_set_until_the_floor(tiny_model, pairs, tmp_path):
    model_dir, _ = tiny_model
    settings = DPOSettings(
        loss_type=["sigmoid"], batch_size=8, max_pairs=12, min_steps=5, lora_r=4, lora_alpha=8, logging_steps=1
    )
    metrics = train_dpo(model_dir, pairs, tmp_path, settings)
    assert metrics["pairs"] == 12 and metrics["steps"] == 5  # 2 steps per pass over 12 pairs: 2.5 passes
    assert metrics["epochs_run"] == 2.5
    log = [json.loads(line) for line in open(tmp_path / "train_log.jsonl")]
    assert sum("loss" in e for e in log) == 5


@pytest.mark.parametrize(
    "rows, epochs, min_steps, expected",
    [(12, 1.0, 0, 2), (12, 1.0, 5, 5), (12, 3.0, 5, 6), (3200, 1.0, 100, 400), (500, 1.0, 100, 100)],
)
def test_planned_steps_is_the_larger_of_the_epochs_and_the_floor(rows, epochs, min_steps, expected):
    from mmalign.train.dpo import planned_steps

    assert planned_steps(rows, DPOSettings(batch_size=8, epochs=epochs, min_steps=min_steps)) == expected


def test_step_profile_sorts_operators_by_kind_and_profiles_a_run_of_a_study_directory(tiny_model, pairs, tmp_path):
    """benchmarks/step_profile.py: backward ops take their forward's kind; on a study-shaped directory it trains the
    variant's recipe for the asked steps, at one thread, without writing into the study, and its kinds add up."""
    import os
    import shutil
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from step_profile import KINDS, kind_of, main

    assert kind_of("aten::mm") == kind_of("aten::addmm") == "matmul"
    assert kind_of("aten::silu_backward") == kind_of("aten::mul") == "elementwise and reductions"
    assert kind_of("aten::_scaled_dot_product_flash_attention_for_cpu_backward") == "attention"
    assert kind_of("enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__") == "data"
    assert kind_of("Optimizer.step#AdamW.step") == "optimizer"
    assert kind_of("aten::view") == kind_of("autograd::engine::evaluate_function: MmBackward0") == "other"

    model_dir, _ = tiny_model
    study = tmp_path / "study"
    (study / "resources" / "models").mkdir(parents=True)
    shutil.copytree(model_dir, study / "resources" / "models" / "tinyllava")
    (study / "results" / "pairs" / "povid").mkdir(parents=True)
    shutil.copy(pairs, study / "results" / "pairs" / "povid" / "pairs.parquet")
    run = study / "results" / "runs" / "dpo_povid" / "seed0"
    run.mkdir(parents=True)
    spec = {"variant": "dpo_povid/seed0", "base_model": "tinyllava", "pairset": "povid", "method": "dpo"}
    spec |= {"batch_size": 4, "lora_r": 4, "lora_alpha": 8, "loss_type": ["sigmoid"], "min_steps": 400}
    (run / "spec.json").write_text(json.dumps(spec))
    before = sorted(p.relative_to(study) for p in study.rglob("*"))
    cwd, threads = os.getcwd(), torch.get_num_threads()
    try:
        figures = main(["--from", str(study), "--steps", "3", "--json", str(tmp_path / "profile.json")])
        assert torch.get_num_threads() == 1  # as the study's training jobs
    finally:
        os.chdir(cwd)
        torch.set_num_threads(threads)
    assert figures["steps"] == 3  # the asked steps, not the spec's 400
    assert sorted(p.relative_to(study) for p in study.rglob("*")) == before  # the study is only read
    kinds = figures["profiled_ms_per_step"]
    assert set(kinds) == set(KINDS) and kinds["matmul"] > 0 and kinds["data"] > 0 and kinds["attention"] > 0
    assert json.loads((tmp_path / "profile.json").read_text()) == figures
    with pytest.raises(SystemExit, match="no such run"):
        main(["--from", str(study), "--variant", "dpo_nope/seed0"])


def test_length_grouped_batching_pads_less_than_random_batches_on_the_same_pairs(tiny_model, pairs, tmp_path):
    """The same 24 pairs, 6 steps of 4: batches of pairs of about the same length compute fewer padded
    positions, and the run still trains."""
    model_dir, _ = tiny_model
    shares = {}
    for batching in ("random", "length_grouped", "length_bucketed"):
        settings = DPOSettings(
            loss_type=["sigmoid"], batch_size=4, max_pairs=24, lora_r=4, lora_alpha=8, batching=batching
        )
        metrics = train_dpo(model_dir, pairs, tmp_path / batching, settings)
        assert metrics["steps"] == 6
        shares[batching] = metrics["arithmetic"]["padding_share"]
        adapter = load_file(tmp_path / batching / "adapter" / "adapter_model.safetensors")
        assert any(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)
    assert 0 <= shares["length_grouped"] < shares["random"] and 0 <= shares["length_bucketed"] < shares["random"]


def test_batching_must_be_a_known_choice_and_needs_fixed_rows():
    with pytest.raises(ValueError, match="batching must be one of random, length_grouped, length_bucketed"):
        DPOSettings(batching="sorted")
    with pytest.raises(ValueError, match="batching: length_grouped needs fixed pair rows; online_dpo"):
        DPOSettings(method="online_dpo", rejected="external", batching="length_grouped")


def test_pair_lengths_count_the_prompt_and_the_longer_answer(tiny_model):
    from datasets import Dataset
    from transformers import AutoProcessor

    from mmalign.train.batching import pair_lengths

    tokenizer = AutoProcessor.from_pretrained(tiny_model[0]).tokenizer

    def tokens(text):
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    rows = Dataset.from_list(
        [
            {
                "prompt": [
                    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is there a red circle?"}]}
                ],
                "chosen": [{"role": "assistant", "content": "No."}],
                "rejected": [{"role": "assistant", "content": "Yes, there is a red circle at the top left."}],
            },
            {
                "prompt": [
                    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe the image."}]}
                ],
                "chosen": [{"role": "assistant", "content": "A blue square and a green triangle."}],
                "rejected": [{"role": "assistant", "content": "A cat."}],
            },
        ]
    )
    assert pair_lengths(rows, tokenizer) == [
        tokens("Is there a red circle?") + tokens("Yes, there is a red circle at the top left."),
        tokens("Describe the image.") + tokens("A blue square and a green triangle."),
    ]


def test_the_study_benchmark_counts_every_run_replicates_included_and_the_padded_share(tmp_path):
    """benchmarks/default_study.py's training figures read results/runs/<variant>/ and .../seed<k>/ alike."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("default_study", REPO / "benchmarks" / "default_study.py")
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)

    def run(path, seconds, flops, positions, share):
        arithmetic = {"steps": 10, "positions": positions, "padding_share": share, "flops": flops}
        (tmp_path / "results" / "runs" / path).mkdir(parents=True)
        metrics = {"train_seconds": seconds, "steps": 10, "arithmetic": arithmetic, "reference_logps": "pairset"}
        (tmp_path / "results" / "runs" / path / "train_metrics.json").write_text(json.dumps(metrics))

    run("dpo", 10.0, 2e12, 1000, 0.5)
    run("ipo/seed0", 20.0, 4e12, 3000, 0.1)
    run("online/seed1", 30.0, None, None, None)  # an online run: no FLOPs counted
    figures = study.training_arithmetic(tmp_path, rate=1e11)
    assert figures["runs"] == 3 and figures["offline_runs_counted"] == 2 and figures["steps"] == 20
    assert figures["arithmetic_seconds"] == 60.0 and figures["wall_over_arithmetic"] == 0.5
    assert figures["padding_share"] == 0.2  # (500 + 300) padded of 4000 positions


def test_bucketed_batches_are_the_grouped_batches_in_random_order_and_the_short_batch_stays_last():
    from transformers.trainer_pt_utils import get_length_grouped_indices

    from mmalign.train.batching import bucketed_indices

    lengths = [(7 * i) % 23 + 5 for i in range(70)]  # 70 rows: 8 whole batches of 8 and a short one of 6
    grouped = get_length_grouped_indices(lengths, 8, generator=torch.Generator().manual_seed(3))
    bucketed = bucketed_indices(lengths, 8, generator=torch.Generator().manual_seed(3))
    assert sorted(bucketed) == list(range(70))

    def batches(indices):
        return [tuple(indices[i : i + 8]) for i in range(0, len(indices), 8)]

    assert sorted(batches(bucketed)[:-1]) == sorted(batches(grouped)[:-1])  # the same whole batches
    assert batches(bucketed)[-1] == batches(grouped)[-1] and len(batches(bucketed)[-1]) == 6
    assert batches(bucketed) != batches(grouped)  # in another order
    longest = [max(lengths[i] for i in b) for b in batches(bucketed)[:-1]]
    assert longest != sorted(longest, reverse=True)  # not longest first
