"""Reward models for LLaVA-family models: the scalar head on the multimodal backbone, its training with TRL's
Bradley-Terry loss, pairwise accuracy, and the checks around them (split by image, identical pairs, at-chance RM)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from PIL import Image

from mmalign.reward.accuracy import open_image, reward_accuracy
from mmalign.reward.data import reward_rows, split_by_image
from mmalign.reward.model import (
    LlavaForSequenceClassification,
    LlavaNextForSequenceClassification,
    attach_reward_lora,
    encode,
    load_reward_model,
    render,
    reward_scores,
)
from mmalign.reward.train import (
    RewardModelAtChanceError,
    RewardSettings,
    VisionRewardTrainer,
    reward_config,
    train_reward_model,
)
from mmalign.schema import read_pairs, write_pairs

ANSWERS = ["Yes.", "A red circle left of a blue square.", "There are three shapes in the picture, all small."]


@pytest.fixture(scope="module")
def tiny_rm(tiny_model):
    model_dir, _ = tiny_model
    return load_reward_model(model_dir)


def some_pairs(pairs, n):
    return read_pairs(pairs).head(n)


def test_llava_rm_gives_one_finite_score_per_row_whatever_the_padding(tiny_rm, pairs):
    model, processor = tiny_rm
    assert isinstance(model, LlavaForSequenceClassification)
    table = some_pairs(pairs, 3)
    images, prompts = [open_image(p) for p in table.image], list(table.prompt)
    batch = reward_scores(model, processor, images, prompts, ANSWERS, batch_size=3)
    alone = [reward_scores(model, processor, [i], [p], [a])[0] for i, p, a in zip(images, prompts, ANSWERS)]
    assert len(batch) == 3 and all(torch.isfinite(torch.tensor(batch)))
    assert batch == pytest.approx(alone, abs=1e-5)
    assert len(set(batch)) == 3  # the rows differ, so the pooled positions do
    # left padding: the pooled position and the positions follow the attention mask
    texts = [render(processor, p, a) for p, a in zip(prompts, ANSWERS)]
    left = processor(images=images, text=texts, padding=True, padding_side="left", return_tensors="pt")
    assert (left["attention_mask"][:, 0] == 0).any()
    with torch.no_grad():
        assert model(**left).logits.squeeze(-1).tolist() == pytest.approx(alone, abs=1e-5)


def test_llava_next_rm_scores_images_of_two_aspect_ratios_in_one_batch(tmp_path):
    from rehearsal.tiny_llava_next import build_tiny_llava_next

    model_dir = build_tiny_llava_next(tmp_path / "next", ["Describe the image.", *ANSWERS])
    model, processor = load_reward_model(model_dir)
    assert isinstance(model, LlavaNextForSequenceClassification)
    images = [Image.new("RGB", (40, 90), (200, 30, 30)), Image.new("RGB", (90, 30), (30, 30, 200))]
    prompts = ["Describe the image."] * 2
    batch = encode(processor, images, [render(processor, p, a) for p, a in zip(prompts, ANSWERS)])
    assert batch["pixel_values"].shape[1] > 1 and batch["image_sizes"].tolist() == [[90, 40], [30, 90]]
    scores = reward_scores(model, processor, images, prompts, ANSWERS[:2], batch_size=2)
    alone = [reward_scores(model, processor, [i], [p], [a])[0] for i, p, a in zip(images, prompts, ANSWERS)]
    assert len(scores) == 2 and all(torch.isfinite(torch.tensor(scores)))
    assert scores == pytest.approx(alone, abs=1e-5)


def test_auto_class_loads_the_generative_checkpoints_backbone(tiny_model):
    from transformers import AutoModelForImageTextToText, AutoModelForSequenceClassification

    model_dir, _ = tiny_model
    reward = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1).state_dict()
    generative = AutoModelForImageTextToText.from_pretrained(model_dir).state_dict()
    backbone = [k for k in reward if k != "score.weight"]
    assert set(reward) - set(backbone) == {"score.weight"} and reward["score.weight"].shape[0] == 1
    assert backbone and all(torch.equal(reward[k], generative[k]) for k in backbone)


def test_one_trainer_step_changes_the_head_and_a_lora_weight(tiny_model, pairs, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoProcessor

    model_dir, _ = tiny_model
    rows, _ = reward_rows(some_pairs(pairs, 4))
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1)
    model = attach_reward_lora(model, r=4, alpha=8, dropout=0.0)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all("lora_" in n or "score" in n for n in trainable)  # vision tower and projector frozen
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    settings = RewardSettings(learning_rate=1e-2, steps=1, batch_size=4, logging_steps=1, warmup_ratio=0.0)
    trainer = VisionRewardTrainer(
        model=model,
        args=reward_config(tmp_path, settings, True),
        train_dataset=Dataset.from_list(rows),
        processor=processor,
    )
    trainer.train()
    changed = {n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])}
    assert any("score" in n for n in changed) and any("lora_B" in n for n in changed)
    logged = next(e for e in trainer.state.log_history if "loss" in e)
    assert logged["loss"] > 0 and 0 <= logged["accuracy"] <= 1


def test_accuracy_is_strict_a_tie_is_wrong_and_identical_pairs_are_never_scored(tiny_model, pairs):
    model, processor = load_reward_model(tiny_model[0])
    table = some_pairs(pairs, 4).copy()
    table["chosen"], table["rejected"] = ANSWERS[1], ANSWERS[2]
    table.loc[table.index[3], "rejected"] = f"  {ANSWERS[1]} "  # identical after stripping
    counts = reward_accuracy(model, processor, table, batch_size=4)
    assert counts["pairs"] == 3 and counts["dropped_identical"] == 1
    flipped = table.rename(columns={"chosen": "rejected", "rejected": "chosen"})
    reverse = reward_accuracy(model, processor, flipped, batch_size=4)
    assert counts["ties"] == reverse["ties"] == 0
    assert counts["correct"] + reverse["correct"] == 3  # every pair ranked one way or the other
    assert counts["mean_margin"] == pytest.approx(-reverse["mean_margin"], abs=1e-5)
    with torch.no_grad():
        model.score.weight.zero_()  # a constant reward: every pair a tie, none correct
    tied = reward_accuracy(model, processor, table, batch_size=4)
    assert tied["ties"] == 3 and tied["correct"] == 0 and tied["accuracy"] == 0.0


def test_reward_rows_drop_and_count_identical_and_empty_answers(pairs):
    table = some_pairs(pairs, 5).copy()
    table.loc[table.index[0], "rejected"] = table.loc[table.index[0], "chosen"] + "\n"
    table.loc[table.index[1], "chosen"] = " "
    rows, manifest = reward_rows(table)
    assert len(rows) == 3 and manifest.rows_read == 5
    assert dict(manifest.dropped) == {"identical_answers": 1, "empty_chosen": 1}


def test_split_by_image_is_disjoint_seeded_and_near_the_share(pairs):
    table = read_pairs(pairs)
    train, held = split_by_image(table, 0.25, seed=1)
    assert set(train.image).isdisjoint(held.image) and len(train) + len(held) == len(table)
    per_image = table.groupby("image").size().max()
    assert 0.25 * len(table) <= len(held) < 0.25 * len(table) + per_image
    again, _ = split_by_image(table, 0.25, seed=1)
    other, _ = split_by_image(table, 0.25, seed=2)
    assert list(again.id) == list(train.id) and list(other.id) != list(train.id)


def separable_table(pairs, n, path, contradictory=False):
    """n pairs on distinct images: a short right answer and a long wrong one, or (contradictory) the same two
    answers preferred one way in half the pairs and the other way in the other half, on the same image."""
    base = some_pairs(pairs, n)
    rows = []
    for i, row in enumerate(base.itertuples()):
        chosen, rejected = ANSWERS[0], ANSWERS[2]
        image, prompt = row.image, row.prompt
        if contradictory:
            image, prompt = base.image.iloc[0], base.prompt.iloc[0]
            chosen, rejected = (chosen, rejected) if i % 2 else (rejected, chosen)
        rows.append({"id": f"p{i}", "image": image, "prompt": prompt, "chosen": chosen, "rejected": rejected})
    write_pairs(rows, path)
    return path


def test_rm_trained_on_a_separable_set_ranks_it_perfectly_and_is_published(tiny_model, pairs, tmp_path):
    table = separable_table(pairs, 8, tmp_path / "pairs.parquet")
    settings = RewardSettings(learning_rate=1e-2, steps=6, batch_size=4, heldout_share=0.0, min_train_accuracy=1.0)
    metrics = train_reward_model(tiny_model[0], table, tmp_path / "rm", settings)
    assert metrics["train_accuracy"]["accuracy"] == 1.0 and metrics["steps"] == 6
    assert (tmp_path / "rm" / "adapter" / "adapter_config.json").exists()
    model, processor = load_reward_model(tiny_model[0], tmp_path / "rm" / "adapter")
    assert reward_accuracy(model, processor, pd.read_parquet(table))["accuracy"] == 1.0
    log = [json.loads(line) for line in open(tmp_path / "rm" / "train_log.jsonl")]
    assert any("accuracy" in e for e in log)


def test_rm_at_chance_on_its_training_pairs_is_not_published(tiny_model, pairs, tmp_path):
    # the same two answers to the same image and prompt, preferred each way in half the pairs: no reward model
    # ranks more than half of them right, however it is trained
    table = separable_table(pairs, 4, tmp_path / "pairs.parquet", contradictory=True)
    settings = RewardSettings(learning_rate=1e-2, steps=2, batch_size=4, heldout_share=0.0)
    with pytest.raises(RewardModelAtChanceError, match=r"accuracy 0\.500 .* below the bound 0\.6"):
        train_reward_model(tiny_model[0], table, tmp_path / "rm", settings)
    assert not (tmp_path / "rm" / "adapter").exists()


def test_llava_next_rm_trains_on_images_of_two_aspect_ratios_and_reports_held_out_accuracy(tmp_path):
    from rehearsal.tiny_llava_next import build_tiny_llava_next

    model_dir = build_tiny_llava_next(tmp_path / "next", ["Describe the image.", *ANSWERS])
    rows = []
    for i, size in enumerate([(40, 90), (90, 30), (56, 56), (30, 84)]):
        path = tmp_path / f"image{i}.png"
        Image.new("RGB", size, (60 * i, 80, 200 - 40 * i)).save(path)
        for j in range(2):
            rows.append(
                {
                    "id": f"p{i}{j}",
                    "image": str(path),
                    "prompt": "Describe the image.",
                    "chosen": ANSWERS[j],
                    "rejected": ANSWERS[2],
                }
            )
    table = tmp_path / "pairs.parquet"
    write_pairs(rows, table)
    settings = RewardSettings(learning_rate=1e-2, steps=2, batch_size=4, heldout_share=0.25, min_train_accuracy=0.0)
    metrics = train_reward_model(model_dir, table, tmp_path / "rm", settings)
    assert metrics["steps"] == 2 and metrics["pairs"] == 6 and metrics["heldout_pairs"] == 2
    assert metrics["heldout_accuracy"]["pairs"] == 2 and metrics["train_loss"] > 0
    held = json.loads((tmp_path / "rm" / "heldout_ids.json").read_text())
    assert len(held) == 2 and held[0][:2] == held[1][:2]  # both pairs of one image
