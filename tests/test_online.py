"""Online-DPO, Mixed-DPO and online BDHS (mmalign.online) and resuming a killed training run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mmalign.train.dpo import train_dpo
from mmalign.train.online import OnlineSettings, uses_offline_pair
from mmalign.train.settings import DPOSettings

REPO = Path(__file__).resolve().parents[1]


def adapter_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "adapter" / "adapter_model.safetensors")


def lora_b_trained(run_dir: Path) -> bool:
    return any(v.abs().sum() > 0 for k, v in adapter_weights(run_dir).items() if "lora_B" in k)


def test_mixed_dpo_uses_the_offline_pair_with_probability_p():
    settings = OnlineSettings(mode="mixed", offline_prob=0.5)
    draws = [uses_offline_pair(settings, 0, step, f"pair-{i}") for step in range(50) for i in range(100)]
    assert abs(sum(draws) / len(draws) - 0.5) < 0.02  # 5000 draws: 4 standard deviations is 0.028
    skewed = OnlineSettings(mode="mixed", offline_prob=0.8)
    share = sum(uses_offline_pair(skewed, 1, s, str(i)) for s in range(50) for i in range(100)) / 5000
    assert abs(share - 0.8) < 0.02
    assert not any(uses_offline_pair(OnlineSettings(mode="online"), 0, s, "x") for s in range(100))


def test_online_settings_reject_bad_values():
    with pytest.raises(ValueError, match="online mode"):
        OnlineSettings(mode="offline")
    with pytest.raises(ValueError, match="offline_prob"):
        OnlineSettings(mode="mixed", offline_prob=1.5)
    with pytest.raises(ValueError, match="method"):
        DPOSettings(method="rlhf")


def test_online_bdhs_step_regenerates_rejected_answers_and_trains(tiny_model, pairs, tmp_path):
    model_dir, _ = tiny_model
    settings = DPOSettings(
        method="online_bdhs",
        rejected="both",
        learning_rate=0.05,
        projector_learning_rate=0.05,
        batch_size=4,
        max_pairs=8,
        lora_r=4,
        lora_alpha=8,
        logging_steps=1,
        online={"bdhs": {"n_bdhs": 2, "rho_th": 0.99}},
    )
    metrics = train_dpo(model_dir, pairs, tmp_path, settings)
    assert metrics["steps"] == 2
    counts = metrics["online"]
    assert counts["pairs/online_pairs"] + counts.get("pairs/dropped_empty_bdhs", 0) == 8
    assert counts["pairs/generation_seconds"] > 0 and 0 < metrics["generation_share"] < 1
    log = [json.loads(line) for line in open(tmp_path / "train_log.jsonl")]
    assert any("pairs/online_pairs" in e for e in log)  # counts reach the training log
    assert lora_b_trained(tmp_path)


RESUME_SCRIPT = """
import json, sys
from mmalign.train.dpo import train_dpo
from mmalign.train.settings import DPOSettings
settings = DPOSettings(learning_rate=0.05, projector_learning_rate=0.05, batch_size=4, max_pairs=24, lora_r=4,
                       lora_alpha=8, logging_steps=1, checkpoint_steps=2)
metrics = train_dpo(sys.argv[1], sys.argv[2], sys.argv[3], settings)
open(sys.argv[3] + "/metrics.json", "w").write(json.dumps(metrics))
"""


def run_training(model_dir, pairs_path, out_dir, kill_after_checkpoint: str | None = None):
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow" / "scripts")}
    proc = subprocess.Popen(
        [sys.executable, "-c", RESUME_SCRIPT, str(model_dir), str(pairs_path), str(out_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if kill_after_checkpoint is None:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        return
    marker = Path(out_dir) / "checkpoints" / kill_after_checkpoint / "trainer_state.json"
    deadline = time.time() + 600
    while not marker.exists():
        assert proc.poll() is None, f"training ended before {kill_after_checkpoint}: {proc.stderr.read()[-3000:]}"
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # the way a cluster kills a job: no cleanup
    proc.wait()


def test_a_killed_run_resumes_from_its_checkpoint_and_ends_like_an_uninterrupted_one(tiny_model, pairs, tmp_path):
    model_dir, _ = tiny_model
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run_training(model_dir, pairs, straight)
    run_training(model_dir, pairs, resumed, kill_after_checkpoint="checkpoint-2")
    assert not (resumed / "adapter").exists()
    run_training(model_dir, pairs, resumed)  # the rerun
    assert json.loads((resumed / "metrics.json").read_text())["resumed_from"] == "checkpoint-2"
    assert json.loads((straight / "metrics.json").read_text())["resumed_from"] is None

    metrics_log = [json.loads(line) for line in open(resumed / "train_log.jsonl")]
    straight_log = [json.loads(line) for line in open(straight / "train_log.jsonl")]
    losses = lambda log: {e["step"]: e["loss"] for e in log if "loss" in e}  # noqa: E731
    assert 3 in losses(metrics_log) and 6 in losses(metrics_log)  # steps after the kill were trained
    for step, loss in losses(metrics_log).items():
        assert loss == pytest.approx(losses(straight_log)[step], rel=1e-5, abs=1e-6), step
    a, b = adapter_weights(straight), adapter_weights(resumed)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    assert not (resumed / "checkpoints").exists()  # cleaned up after success
    # bookkeeping equal to the uninterrupted run's: the loss over every step, a rate over the steps run here
    after, before = (
        json.loads((resumed / "metrics.json").read_text()),
        json.loads((straight / "metrics.json").read_text()),
    )
    assert after["train_loss"] == pytest.approx(before["train_loss"], rel=1e-5)
    assert after["steps"] == before["steps"] and after["epochs_run"] == before["epochs_run"]
    # the rate counts the pairs of the steps this process ran (from checkpoint-2 on), not all steps over fewer
    # seconds (it was 3x too high); compared as pairs = rate x seconds, which no machine's speed changes
    pairs = lambda m: m["pairs_per_second"] * m["train_seconds"]  # noqa: E731
    assert pairs(after) == pytest.approx(pairs(before) * (before["steps"] - 2) / before["steps"], rel=0.05)


def scene_table(scenes_path) -> dict[str, dict]:
    with open(scenes_path) as fh:
        return {s["id"]: s for s in map(json.loads, fh)}


@pytest.mark.parametrize("method", ["online_dpo", "mixed_dpo"])
def test_online_step_samples_judges_and_changes_the_weights(small_world, tiny_model, pairs, tmp_path, method):
    from mmalign.judges import make_judge

    _, scenes_path, _ = small_world
    model_dir, _ = tiny_model
    judge = make_judge({"backend": "exact"}, tmp_path / "judgments.sqlite")
    settings = DPOSettings(
        method=method,
        learning_rate=0.05,
        projector_learning_rate=0.05,
        batch_size=8,
        max_pairs=16,
        lora_r=4,
        lora_alpha=8,
        logging_steps=1,
        online={"temperature": 1.0, "max_new_tokens": 24},
    )
    metrics = train_dpo(model_dir, pairs, tmp_path / "run", settings, judge=judge, scenes=scene_table(scenes_path))
    counts = metrics["online"]
    made = counts.get("pairs/online_pairs", 0)
    dropped = sum(v for k, v in counts.items() if k.startswith("pairs/dropped_"))
    offline = counts.get("pairs/offline_pairs", 0)
    assert made + dropped + offline == 16  # every example is accounted for
    assert made > 0  # the policy's samples were judged and trained on
    if method == "mixed_dpo":
        assert offline > 0
    else:
        assert offline == 0
    assert lora_b_trained(tmp_path / "run")
    # every raw verdict was kept in the judge's cache (ties included; they carry no preference)
    import sqlite3

    with sqlite3.connect(tmp_path / "judgments.sqlite") as db:
        stored = db.execute("select count(*) from judgments").fetchone()[0]
    assert stored == made + counts.get("pairs/dropped_tie", 0)


def test_a_judge_that_cannot_judge_fails_the_run_and_publishes_no_adapter(small_world, tiny_model, pairs, tmp_path):
    """The exact judge cannot judge a pair without its scene: every online pair is dropped, no step trains on a
    guessed verdict, and the run fails over its annotator's budget, naming the counts, with no adapter."""
    from mmalign.judges import JudgeBudgetError, make_judge

    model_dir, _ = tiny_model
    settings = DPOSettings(
        method="online_dpo",
        batch_size=8,
        max_pairs=16,
        lora_r=4,
        lora_alpha=8,
        logging_steps=1,
        online={"max_new_tokens": 16},
    )
    judge = make_judge({"backend": "exact"})
    judge.name = "annotator_exact"
    with pytest.raises(JudgeBudgetError, match=r"judge 'annotator_exact' \(online run .*\): \d+ of \d+ calls failed"):
        train_dpo(model_dir, pairs, tmp_path / "run", settings, judge=judge, scenes={})
    assert not (tmp_path / "run" / "adapter").exists()


def test_online_budgets_fail_a_run_that_skipped_steps_or_missed_its_online_share():
    from collections import Counter

    from mmalign.train.online import OnlineBudgetError, OnlineSettings, PairMaker, check_online_budget

    maker = PairMaker(None, OnlineSettings(mode="online_bdhs"))
    maker.counts = Counter(online_pairs=30, skipped_steps=1)
    assert check_online_budget(maker, 10, "run")["online_share"] == 1.0  # 1 of 10 steps skipped: within 10%
    maker.counts["skipped_steps"] = 2
    with pytest.raises(OnlineBudgetError, match=r"run: 2 of 10 steps had no pair \(budget 10%\)"):
        check_online_budget(maker, 10, "run")
    mixed = PairMaker(None, OnlineSettings(mode="online_bdhs", offline_prob=0.5))
    mixed.settings = OnlineSettings(mode="mixed", offline_prob=0.5)
    mixed.counts = Counter(online_pairs=2, offline_pairs=14, dropped_judge_failed=6)
    with pytest.raises(OnlineBudgetError, match=r"online pairs are 12% of the 16 trained on \(at least 25% needed"):
        check_online_budget(mixed, 4, "run")


def test_image_distortion_rejects_the_noisy_image_top_tokens_and_trains(tiny_model, pairs, tmp_path):
    """POVID-style baseline: distortion rows are scored on the noisy-image top tokens, not on y+ itself."""
    from trl.trainer.dpo_trainer import DataCollatorForVisionPreference

    from mmalign.models import load_policy
    from mmalign.train.distortion import DistortionHook
    from mmalign.train.dpo import preference_dataset

    model_dir, _ = tiny_model
    model, processor = load_policy(model_dir)
    dataset = preference_dataset(pairs, 4, 0, rejected="both", distortion=True)
    assert [r["distort"] for r in dataset] == [False, True] * 4
    examples = [dict(r) for r in dataset]
    for ex in examples:
        ex.pop("distort")
    batch = DataCollatorForVisionPreference(processor=processor)(examples)
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
    hook = DistortionHook(noise_steps=500, seed=0)
    hook.rows = torch.tensor([8 + 1, 8 + 3, 8 + 5, 8 + 7])  # the distortion rows of the rejected half
    handle = model.register_forward_pre_hook(hook, with_kwargs=True)
    seen = {}
    spy = model.register_forward_pre_hook(lambda m, a, k: seen.update(labels=k["labels"]), with_kwargs=True)
    with torch.no_grad():
        model(**batch, labels=labels)
    handle.remove()
    spy.remove()
    new = seen["labels"]
    untouched = [r for r in range(16) if r not in hook.rows.tolist()]
    assert torch.equal(new[untouched], labels[untouched])
    assert torch.equal(new[hook.rows] == -100, labels[hook.rows] == -100)  # same scored positions as y+
    assert not torch.equal(new[hook.rows], labels[hook.rows])  # the noisy image changes some top tokens

    settings = DPOSettings(
        method="image_distortion",
        rejected="both",
        learning_rate=0.05,
        projector_learning_rate=0.05,
        batch_size=4,
        max_pairs=8,
        lora_r=4,
        lora_alpha=8,
        logging_steps=1,
    )
    metrics = train_dpo(model_dir, pairs, tmp_path, settings)
    assert metrics["pairs"] == 16 and metrics["steps"] == 4
    assert lora_b_trained(tmp_path)


def test_an_adapter_that_never_changed_is_not_published(tiny_model):
    """LoRA's B matrices start at zero: an adapter still all zero after training is the base model."""
    from transformers import AutoModelForImageTextToText

    from mmalign.train.dpo import UnchangedAdapterError, attach_lora, check_adapter_changed

    settings = DPOSettings(lora_r=4, lora_alpha=8)
    model = attach_lora(AutoModelForImageTextToText.from_pretrained(tiny_model[0]), settings)
    with pytest.raises(UnchangedAdapterError, match=r"variant 'online_dpo_povid' \(dpo\): every LoRA weight"):
        check_adapter_changed(model, settings, Path("results/runs/online_dpo_povid"))
    next(p for n, p in model.named_parameters() if "lora_B" in n).data += 0.01
    check_adapter_changed(model, settings, Path("results/runs/online_dpo_povid"))
