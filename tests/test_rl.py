"""RL alignment (mmalign.train.rl): RLOO and PPO steps on the tiny LLaVA, GAE, the instability rule and reward
normalisation. The reward model is a deterministic stand-in with the RM's signature (images, prompts, answers)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mmalign.schema import read_pairs
from mmalign.train.ppo import gae, token_rewards, whiten
from mmalign.train.rl import RLSettings, reward_function, reward_statistics, train_rl
from mmalign.train.stability import stability_verdict

TRACKED = ("reward", "kl", "response_length", "entropy")


class StandInRM:
    """reward = distinct words + a tenth of the characters + the image's mean brightness; records its calls."""

    def __init__(self):
        self.calls: list[tuple[list, list[str], list[str]]] = []

    def __call__(self, images, prompts, answers) -> list[float]:
        assert len(images) == len(prompts) == len(answers)
        self.calls.append((images, prompts, answers))
        return [
            len(set(a.split())) + 0.1 * len(a) + float(np.asarray(im, dtype=float).mean()) / 255
            for im, a in zip(images, answers)
        ]


def tiny_settings(method: str, **overrides) -> RLSettings:
    spec = dict(
        learning_rate=0.05,
        batch_size=8,  # 4 prompts x 2 samples
        num_generations=2,
        max_completion_length=8,
        max_steps=1,
        max_prompts=4,
        ppo_epochs=1,
        lora_r=4,
        lora_alpha=8,
    )
    return RLSettings(method=method, **{**spec, **overrides})


def lora_b_trained(run_dir) -> bool:
    weights = load_file(run_dir / "adapter" / "adapter_model.safetensors")
    return any(v.abs().sum() > 0 for k, v in weights.items() if "lora_B" in k)


def check_run(metrics, out_dir, rm, pairs_path, model_dir):
    """What every RL step must leave: samples scored with their images, a trained adapter, the four metrics."""
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    frame = read_pairs(pairs_path)
    training_calls = rm.calls[2 * math.ceil(len(frame) / 64) :]  # the first ones score the dataset's answers
    assert training_calls, "the reward model never scored a sample"
    images, prompts, answers = training_calls[0]
    assert len(answers) == 8 and all(hasattr(im, "size") for im in images)  # PIL images reach the RM
    assert set(prompts) <= set(frame["prompt"])  # the plain prompt text, no template
    assert not set(answers) & set(frame["chosen"])  # sampled, not the table's answers
    assert metrics["steps"] == 1 and metrics["samples"] == 8 and metrics["adapter"]
    assert lora_b_trained(out_dir)
    log = [json.loads(line) for line in open(out_dir / "train_log.jsonl")]
    step = next(e for e in log if "reward" in e)
    assert all(isinstance(step[k], float) and math.isfinite(step[k]) for k in TRACKED), step
    assert metrics["stability"]["stable"] and metrics["reward_mean_first"] == step["reward"]
    base = AutoModelForImageTextToText.from_pretrained(model_dir)
    PeftModel.from_pretrained(base, out_dir / "adapter")  # a PEFT adapter for the base model


def test_rloo_step_samples_with_images_scores_and_trains_lora(tiny_model, pairs, tmp_path):
    model_dir, _ = tiny_model
    rm = StandInRM()
    metrics = train_rl(model_dir, pairs, tmp_path, tiny_settings("rloo"), rm)
    check_run(metrics, tmp_path, rm, pairs, model_dir)
    assert not (tmp_path / "value_head.pt").exists()


def test_ppo_step_trains_lora_and_value_head(tiny_model, pairs, tmp_path):
    model_dir, _ = tiny_model
    rm = StandInRM()
    metrics = train_rl(model_dir, pairs, tmp_path, tiny_settings("ppo"), rm)
    check_run(metrics, tmp_path, rm, pairs, model_dir)
    head = torch.load(tmp_path / "value_head.pt")
    assert head["weight"].abs().sum() > 0  # initialised at zero: it trained
    log = [json.loads(line) for line in open(tmp_path / "train_log.jsonl")]
    assert any("ppo/value_loss" in e for e in log)


def test_rl_run_with_nan_rewards_ends_not_stable_without_a_crash(tiny_model, pairs, tmp_path):
    model_dir, _ = tiny_model
    settings = tiny_settings("rloo", normalise_rewards=False)
    metrics = train_rl(model_dir, pairs, tmp_path, settings, lambda images, prompts, answers: [math.nan] * len(images))
    assert not metrics["stable"] and metrics["adapter"] is None
    assert any("non-finite reward" in r for r in metrics["stability"]["reasons"])


def test_gae_on_a_hand_computed_example():
    # gamma 1, lambda 0.5, V = 0.5 everywhere, reward 1 at the end:
    # delta = (0, 0, 0.5); A_2 = 0.5, A_1 = 0 + 0.5 * 0.5 = 0.25, A_0 = 0 + 0.5 * 0.25 = 0.125; R = A + V
    advantages, returns = gae(torch.tensor([[0.0, 0, 1]]), torch.full((1, 3), 0.5), torch.ones(1, 3), 1.0, 0.5)
    torch.testing.assert_close(advantages, torch.tensor([[0.125, 0.25, 0.5]]))
    torch.testing.assert_close(returns, torch.tensor([[0.625, 0.75, 1.0]]))
    # gamma 0.9, lambda 1, the last position is padding (its value 9 must not leak back):
    # delta_1 = 2 + 0.9 * 0 - 1 = 1, delta_0 = 0 + 0.9 * 1 - 1 = -0.1, A_0 = -0.1 + 0.9 * 1 = 0.8;
    # with lambda 1 the returns are the discounted reward sums: R_0 = 0.9 * 2 = 1.8, R_1 = 2
    advantages, returns = gae(
        torch.tensor([[0.0, 2, 0]]), torch.tensor([[1.0, 1, 9]]), torch.tensor([[1, 1, 0]]), 0.9, 1.0
    )
    torch.testing.assert_close(advantages, torch.tensor([[0.8, 1.0, 0.0]]))
    torch.testing.assert_close(returns, torch.tensor([[1.8, 2.0, 0.0]]))


def test_token_rewards_put_the_score_on_the_last_token_and_kl_on_every_token():
    logps, ref = torch.tensor([[-1.0, -2, -3], [-1.0, -1, 0]]), torch.tensor([[-1.5, -2, -2], [-1.0, -2, 0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    rewards = token_rewards(torch.tensor([2.0, -1.0]), logps, ref, mask, beta=0.1)
    torch.testing.assert_close(rewards, torch.tensor([[-0.05, 0.0, 0.1 + 2.0], [0.0, -0.1 - 1.0, 0.0]]))
    white = whiten(torch.tensor([[1.0, 2, 3], [4.0, 5, 100]]), mask)
    assert white[mask.bool()].mean().abs() < 1e-6 and white[1, 2] == 0


def trajectory(kl, length, entropy, reward=None):
    return [
        {
            "step": i + 1,
            "loss": 0.1,
            "reward": reward[i] if reward else 0.0,
            "kl": k,
            "response_length": n,
            "entropy": h,
        }
        for i, (k, n, h) in enumerate(zip(kl, length, entropy))
    ] + [{"train_runtime": 10.0, "step": len(kl)}]


def test_instability_rule_flags_a_collapse_and_passes_a_healthy_run():
    steps = 9
    healthy = trajectory(
        [0.01 * i for i in range(steps)], [40 + (-1) ** i for i in range(steps)], [2.0 - 0.05 * i for i in range(steps)]
    )
    verdict = stability_verdict(healthy, max_completion_length=64)
    assert verdict["stable"], verdict["reasons"]
    assert verdict["logged_steps"] == steps

    collapse = trajectory([0.01 * 3**i for i in range(steps)], [40 / 2**i for i in range(steps)], [2.0] * steps)
    verdict = stability_verdict(collapse)
    assert not verdict["stable"]
    assert any("KL" in r for r in verdict["reasons"]) and any("collapsed" in r for r in verdict["reasons"])

    entropy = trajectory([0.01] * steps, [40] * steps, [2.0 / 3**i for i in range(steps)])
    assert any("entropy" in r for r in stability_verdict(entropy)["reasons"])

    run_on = trajectory([0.01] * steps, [20, 30, 40, 50, 60, 64, 64, 64, 64], [2.0] * steps)
    assert any("run on" in r for r in stability_verdict(run_on, max_completion_length=64)["reasons"])
    assert stability_verdict(run_on)["stable"]  # without the budget there is no cap to run on to

    # thresholds are settings
    assert stability_verdict(collapse, {"max_kl": 1e9, "min_length_ratio": 0.0})["stable"]


def test_a_non_finite_trajectory_is_not_stable():
    nan_loss = trajectory([0.01] * 4, [40] * 4, [2.0] * 4)
    nan_loss[2]["loss"] = math.nan
    verdict = stability_verdict(nan_loss)
    assert not verdict["stable"] and "non-finite loss at step 3" in verdict["reasons"][0]
    empty_reward = trajectory([0.01] * 4, [40] * 4, [2.0] * 4)
    empty_reward[1]["reward"] = None  # TRL logs None when every reward of a step was NaN
    assert not stability_verdict(empty_reward)["stable"]
    inf_kl = trajectory([0.01, math.inf, 0.01], [40] * 3, [2.0] * 3)
    assert not stability_verdict(inf_kl)["stable"]


def test_reward_statistics_normalise_the_dataset_to_zero_mean_unit_std(pairs):
    rm = StandInRM()
    mean, std = reward_statistics(rm, pairs, chunk=7)  # chunks smaller than the table
    frame = read_pairs(pairs)
    rm_images = [im for call in rm.calls for im in call[0]]
    assert len(rm_images) == 2 * len(frame)  # every chosen and every rejected answer, with its image
    reward = reward_function(rm, mean, std)
    from PIL import Image

    images = [Image.open(p).convert("RGB") for p in frame["image"]]
    normalised = []
    for column in ("chosen", "rejected"):
        # the call shape TRL uses: conversational prompts (image part filled in) and completions, image column
        prompts = [
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": p}]}] for p in frame.prompt
        ]
        completions = [[{"role": "assistant", "content": a}] for a in frame[column]]
        normalised += reward(prompts=prompts, completions=completions, image=images, completion_ids=None)
    assert np.mean(normalised) == pytest.approx(0.0, abs=1e-9)
    assert np.std(normalised) == pytest.approx(1.0, rel=1e-9)
    assert rm.calls[-1][1] == list(frame.prompt)  # the RM sees the plain prompt text


def test_settings_take_the_papers_values_per_method():
    rloo, ppo = RLSettings(method="rloo"), RLSettings(method="ppo")
    assert (rloo.learning_rate, rloo.epochs, rloo.batch_size, rloo.beta) == (3e-4, 2.0, 256, 0.4)
    assert (rloo.num_generations, rloo.temperature, rloo.max_grad_norm, rloo.ppo_epochs) == (4, 1.0, 1.0, 1)
    assert (ppo.learning_rate, ppo.epochs, ppo.batch_size, ppo.lr_scheduler_type) == (1.41e-5, 3.0, 32, "constant")
    with pytest.raises(ValueError, match="multiple"):
        RLSettings(batch_size=6, num_generations=4)
    with pytest.raises(ValueError, match="RL method"):
        RLSettings(method="dpo")
    with pytest.raises(ValueError, match="stability"):
        RLSettings(stability={"max_kll": 1})


def test_ppo_reuses_one_rollout_for_its_ppo_epochs(tiny_model, pairs, tmp_path):
    model_dir, _ = tiny_model
    rm = StandInRM()
    settings = tiny_settings("ppo", max_steps=2, ppo_epochs=2)
    metrics = train_rl(model_dir, pairs, tmp_path, settings, rm)
    frame = read_pairs(pairs)
    assert len(rm.calls) - 2 * math.ceil(len(frame) / 64) == 1  # two optimizer steps, one rollout
    assert metrics["steps"] == 2 and metrics["samples"] == 8


def test_a_numerically_diverging_run_ends_not_stable_without_a_crash(tiny_model, pairs, tmp_path):
    model_dir, _ = tiny_model
    settings = tiny_settings("rloo", max_steps=3, learning_rate=1e30)  # Adam steps of ~1e30: weights overflow
    metrics = train_rl(model_dir, pairs, tmp_path, settings, StandInRM())
    assert not metrics["stable"] and metrics["adapter"] is None
    assert metrics["stability"]["reasons"][0].startswith("training diverged")
    assert (tmp_path / "train_log.jsonl").exists() and not (tmp_path / "adapter").exists()


@pytest.fixture(scope="module")
def trained_rm(tiny_model, pairs, tmp_path_factory):
    """A reward model of the workflow (mmalign.reward) trained for a few steps on the POVID analog."""
    from mmalign.reward.train import RewardSettings, train_reward_model

    model_dir, _ = tiny_model
    out = tmp_path_factory.mktemp("rm")
    settings = RewardSettings(learning_rate=1e-2, steps=4, batch_size=8, heldout_share=0.0, min_train_accuracy=0.0)
    metrics = train_reward_model(model_dir, pairs, out, settings)
    return out / "adapter", metrics


@pytest.mark.parametrize("method", ["rloo", "ppo"])
def test_an_rl_variant_trains_against_the_workflows_reward_model(method, tiny_model, pairs, trained_rm, tmp_path):
    """The rule `train` path of an RL variant: its settings from `rl:`, the trained RM scoring samples with their
    images, a trained adapter and the stability verdict beside it."""
    from mmalign.train.rl import train_with_reward_model

    model_dir, _ = tiny_model
    rl = dict(learning_rate=0.05, batch_size=8, num_generations=2, max_completion_length=8, max_steps=1,
              max_prompts=4, ppo_epochs=1, lora_r=4, lora_alpha=8)  # fmt: skip
    spec = {
        "variant": f"{method}_x",
        "method": method,
        "pairset": "povid",
        "reward_model": "rm",
        "seed": 0,
        "beta": 0.1,
        "learning_rate": 3e-3,
        "rl": rl,
    }  # fmt: skip  (DPO keys from variant_defaults: ignored)
    metrics = train_with_reward_model(model_dir, pairs, tmp_path, spec, trained_rm[0])
    assert metrics["reward_model"] == str(trained_rm[0]) and metrics["settings"]["learning_rate"] == 0.05
    assert metrics["reward_statistics"]["std"] > 0  # the RM's scores of the dataset's answers differ
    assert metrics["steps"] == 1 and lora_b_trained(tmp_path)
    verdict = json.loads((tmp_path / "adapter" / "stability.json").read_text())
    assert verdict["stable"] == metrics["stable"] and "reasons" in verdict
    log = [json.loads(line) for line in open(tmp_path / "train_log.jsonl")]
    assert any("rm_raw" in e for e in log)  # the RM's own (unnormalised) scores were logged


def test_a_diverged_run_publishes_a_zeroed_adapter_and_says_so(tiny_model, pairs, trained_rm, tmp_path):
    """Instability is a result: a run whose weights blow up leaves the base model as its adapter (so the study goes
    on) and a "not stable" verdict that the tables show instead of its numbers."""
    from mmalign.train.rl import train_with_reward_model

    model_dir, _ = tiny_model
    rl = dict(learning_rate=1e30, batch_size=8, num_generations=2, max_completion_length=8, max_steps=2,
              max_prompts=4, lora_r=4, lora_alpha=8)  # fmt: skip
    spec = {"variant": "rloo_x", "method": "rloo", "seed": 0, "rl": rl}
    metrics = train_with_reward_model(model_dir, pairs, tmp_path, spec, trained_rm[0])
    assert not metrics["stable"] and metrics["stability"]["reasons"][0].startswith("training diverged")
    assert metrics["adapter"].startswith("zeroed") and not lora_b_trained(tmp_path)
    assert not json.loads((tmp_path / "adapter" / "stability.json").read_text())["stable"]
