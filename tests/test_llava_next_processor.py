"""LLaVA-1.6 (llava-hf/llava-v1.6-vicuna-7b-hf) processing under transformers 5.23, offline.

1. The repository's processor files at full size (336 px tiles, 14 px patches, the real pinpoints, the vicuna
   chat template) with a small tokenizer: for images of several aspect ratios in one left-padded batch, the
   <image> tokens of each row equal the features the model packs for that image (AnyRes tiles, unpadding, one
   image-newline feature per row), and a forward pass runs.
2. A processor_config.json without ``patch_size`` (the repository's older revisions) fails on the first call;
   the settings passed to ``AutoProcessor.from_pretrained`` fix it.
3. The scaled-down tiny model of ``rehearsal.tiny_llava_next``: batched generation and a DPO-style forward.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from PIL import Image

from rehearsal.tiny_llava_next import (
    FULL,
    LLAVA_16_VICUNA_7B,
    TINY,
    VICUNA_CHAT_TEMPLATE,
    build_tiny_llava_next,
    image_tokens_per_image,
    tiny_model,
    train_tokenizer,
    write_processor_files,
)

TEXTS = [
    "Describe the image in detail.",
    "Is there a dog in the image? Answer yes or no.",
    "Yes, there is a dog.",
    "No, there is no dog in the image.",
    "The image shows a red circle on the left and a blue square on the right.",
    "A cat is sitting on a wooden chair next to a window.",
    "What colour is the car?",
    "The car is green.",
]
PROMPT = "Describe the image in detail."
# (width, height) as PIL takes them: landscape, portrait, wide, tall, square, tiny (upscaled)
SIZES = [(640, 480), (480, 640), (1000, 300), (300, 1000), (336, 336), (20, 30)]
# <image> tokens per image at full size (336 / 14): base tile 576 (CLS dropped) + unpadded grid + newlines
FULL_TOKENS = [2340, 2352, 2182, 2232, 1176, 984]
SETTINGS = {"patch_size": 14, "vision_feature_select_strategy": "default", "num_additional_image_tokens": 1}


def noise_image(width: int, height: int, seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def user_turn(prompt: str = PROMPT) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS)


@pytest.fixture(scope="module")
def full_dir(tokenizer, tmp_path_factory):
    """The repository's processor files at full size beside the small tokenizer."""
    out = tmp_path_factory.mktemp("llava-v1.6-vicuna-7b-processor")
    tokenizer.save_pretrained(out)
    return write_processor_files(out, FULL)


@pytest.fixture(scope="module")
def full_model(tokenizer):
    """Vision tower at 336 px / 14 px patches, tiny widths: the real model's feature counts."""
    return tiny_model(tokenizer, FULL)


@pytest.fixture(scope="module")
def full_batch(full_dir):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(full_dir)
    text = processor.apply_chat_template(user_turn(), add_generation_prompt=True, tokenize=False)
    images = [noise_image(w, h, i) for i, (w, h) in enumerate(SIZES)]
    batch = processor(images=images, text=[text] * len(images), padding=True, padding_side="left", return_tensors="pt")
    return processor, batch


# -------------------------------------------------------------------------- 1. the repository's files


def test_the_files_are_the_repositorys(full_dir):
    pre = json.loads((full_dir / "preprocessor_config.json").read_text())
    assert pre["image_grid_pinpoints"] == [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
    assert pre["crop_size"] == {"height": 336, "width": 336} and pre["size"] == {"shortest_edge": 336}
    assert pre["image_processor_type"] == "LlavaNextImageProcessor" and pre["resample"] == 3
    proc = json.loads((full_dir / "processor_config.json").read_text())
    assert proc == LLAVA_16_VICUNA_7B["processor_config.json"]
    assert proc["patch_size"] == 14 and proc["num_additional_image_tokens"] == 1
    facts = LLAVA_16_VICUNA_7B["config.json"]
    assert facts["image_token_index"] == 32000 and facts["vision_feature_layer"] == -2


def test_the_processor_loads_with_the_vicuna_template(full_batch, full_model):
    processor, _ = full_batch
    assert type(processor).__name__ == "LlavaNextProcessor"
    assert type(processor.image_processor).__name__.startswith("LlavaNextImageProcessor")  # Pil without torchvision
    assert processor.patch_size == 14 and processor.vision_feature_select_strategy == "default"
    assert processor.num_additional_image_tokens == 1
    assert processor.chat_template == VICUNA_CHAT_TEMPLATE
    assert processor.image_token_id == full_model.config.image_token_index
    text = processor.apply_chat_template(user_turn(), add_generation_prompt=True, tokenize=False)
    assert text == f"USER: <image>\n{PROMPT} ASSISTANT:"


def test_left_padded_batch_has_one_image_token_per_feature(full_batch, full_model):
    processor, batch = full_batch
    image_token = full_model.config.image_token_index
    tokens = (batch["input_ids"] == image_token).sum(1).tolist()
    assert tokens == FULL_TOKENS
    assert tokens == image_tokens_per_image(processor, [(h, w) for w, h in SIZES])
    # left padding: every row ends with the prompt, the shorter rows start with padding
    assert batch["attention_mask"][:, -1].all()
    assert (batch["attention_mask"][:, 0] == 0).sum() == len(SIZES) - 1
    assert batch["pixel_values"].shape == (len(SIZES), 5, 3, 336, 336)  # base tile + up to 4 tiles, zero-padded
    with torch.no_grad():
        packed = full_model.get_image_features(pixel_values=batch["pixel_values"], image_sizes=batch["image_sizes"])
    features = packed.pooler_output
    assert [f.shape[0] for f in features] == tokens
    # the image-newline features: one per row of the unpadded tile grid, after the base tile's 576 features
    newline = full_model.model.image_newline
    for f, n in zip(features, tokens):
        is_newline = torch.isclose(f, newline.expand_as(f)).all(-1)
        assert not is_newline[:576].any()
        rows = int(is_newline.sum())
        assert rows > 0 and (n - 576) % rows == 0  # rows x (width + 1) after the base tile


def test_forward_on_the_batch_runs_without_a_feature_token_mismatch(full_batch, full_model):
    processor, batch = full_batch
    with torch.no_grad():
        out = full_model(**batch)
    assert out.logits.shape == (*batch["input_ids"].shape, len(processor.tokenizer))
    assert torch.isfinite(out.logits).all()


@pytest.mark.parametrize("scale", [FULL, TINY], ids=["full", "tiny"])
def test_token_count_matches_the_models_packing_for_many_aspect_ratios(tokenizer, scale, tmp_path):
    """The processor's count against the model's own packing (pack_image_features on stand-in features), for
    extreme and random sizes; cheap, since no vision tower runs."""
    from transformers import AutoProcessor
    from transformers.models.llava_next.modeling_llava_next import image_size_to_num_patches

    tokenizer.save_pretrained(tmp_path)
    processor = AutoProcessor.from_pretrained(write_processor_files(tmp_path, scale))
    model = tiny_model(tokenizer, scale)
    rng = random.Random(0)
    sizes = [(h, w) for h in (1, 2, 5, 14, 27, 333, 337, 1007) for w in (1, 3, 13, 300, 1000, 4000)]
    sizes += [(rng.randint(1, 3000), rng.randint(1, 3000)) for _ in range(300)]
    per_tile = scale.patches_per_side**2
    for (h, w), tokens in zip(sizes, image_tokens_per_image(processor, sizes)):
        tiles = image_size_to_num_patches((h, w), model.config.image_grid_pinpoints, scale.image_size)
        _, lens = model.model.pack_image_features(
            [torch.zeros(tiles, per_tile, 1)], torch.tensor([[h, w]]), "default", image_newline=torch.ones(1)
        )
        assert lens.item() == tokens, (h, w)


# ------------------------------------------------------------------------ 2. the missing patch_size pitfall


@pytest.fixture
def old_revision_dir(tokenizer, tmp_path):
    """processor_config.json without patch_size, vision_feature_select_strategy, num_additional_image_tokens."""
    tokenizer.save_pretrained(tmp_path)
    return write_processor_files(tmp_path, FULL, drop=tuple(SETTINGS))


def test_a_processor_config_without_patch_size_fails_on_a_call(old_revision_dir):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(old_revision_dir)
    assert processor.patch_size is None
    text = processor.apply_chat_template(user_turn(), add_generation_prompt=True, tokenize=False)
    with pytest.raises(TypeError, match="NoneType"):
        processor(images=[noise_image(640, 480, 0)], text=[text], return_tensors="pt")


def test_from_pretrained_settings_reach_the_processor_and_fix_it(old_revision_dir, full_model):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(old_revision_dir, **SETTINGS)
    assert (processor.patch_size, processor.vision_feature_select_strategy) == (14, "default")
    assert processor.num_additional_image_tokens == 1
    text = processor.apply_chat_template(user_turn(), add_generation_prompt=True, tokenize=False)
    batch = processor(images=[noise_image(640, 480, 0)], text=[text], return_tensors="pt")
    assert (batch["input_ids"] == full_model.config.image_token_index).sum() == FULL_TOKENS[0]
    with torch.no_grad():
        full_model(**batch)


def test_patch_size_alone_is_not_enough(old_revision_dir, full_model):
    """With the 'default' strategy (CLS dropped) but num_additional_image_tokens left at its default 0, the
    processor writes one <image> token too few and the model refuses the input."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(old_revision_dir, patch_size=14, vision_feature_select_strategy="default")
    assert processor.num_additional_image_tokens == 0
    text = processor.apply_chat_template(user_turn(), add_generation_prompt=True, tokenize=False)
    batch = processor(images=[noise_image(640, 480, 0)], text=[text], return_tensors="pt")
    assert (batch["input_ids"] == full_model.config.image_token_index).sum() == FULL_TOKENS[0] - 1
    with pytest.raises(ValueError, match="Image features and image tokens do not match"), torch.no_grad():
        full_model(**batch)


# ------------------------------------------------------------------------------------ 3. the tiny model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    out = build_tiny_llava_next(tmp_path_factory.mktemp("tiny-llava-next"), TEXTS)
    return AutoModelForImageTextToText.from_pretrained(out), AutoProcessor.from_pretrained(out), out


def test_tiny_model_directory_has_the_repository_layout(tiny):
    model, processor, out = tiny
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    assert {"preprocessor_config.json", "processor_config.json", "chat_template.json"} <= names
    assert type(model).__name__ == "LlavaNextForConditionalGeneration"
    assert model.config.image_grid_pinpoints == [[28, 56], [56, 28], [56, 56], [84, 28], [28, 84]]
    assert processor.image_processor.image_grid_pinpoints == model.config.image_grid_pinpoints
    assert processor.patch_size == model.config.vision_config.patch_size == 7
    assert model.config.image_token_index == processor.image_token_id == len(processor.tokenizer) - 2
    assert (out / "model.safetensors").stat().st_size < 10_000_000
    tok = processor.tokenizer
    assert (tok.unk_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    assert tok.pad_token == "<pad>" and tok("a dog").input_ids[0] == tok.bos_token_id


def test_tiny_model_generates_for_a_left_padded_batch_of_two_aspect_ratios(tiny):
    model, processor, _ = tiny
    text = processor.apply_chat_template(user_turn(), add_generation_prompt=True, tokenize=False)
    images = [noise_image(640, 480, 0), noise_image(300, 1000, 1)]
    batch = processor(images=images, text=[text, text], padding=True, padding_side="left", return_tensors="pt")
    counts = (batch["input_ids"] == model.config.image_token_index).sum(1).tolist()
    assert counts[0] != counts[1]  # different aspect ratios, different token counts: the batch is padded
    assert batch["attention_mask"][:, -1].all() and not batch["attention_mask"].all()
    out = model.generate(**batch, max_new_tokens=8, do_sample=False, pad_token_id=processor.tokenizer.pad_token_id)
    answers = processor.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    assert out.shape[1] > batch["input_ids"].shape[1]


def test_tiny_model_dpo_forward_scores_chosen_and_rejected(tiny):
    """What a DPO step computes: summed log-probabilities of the chosen and the rejected answer, both rows of
    a [chosen; rejected] batch with their images (two aspect ratios), and a loss that backpropagates."""
    model, processor, _ = tiny
    prompt = processor.apply_chat_template(
        user_turn("Is there a dog in the image?"), add_generation_prompt=True, tokenize=False
    )
    answers = {"chosen": "No, there is no dog in the image.", "rejected": "Yes, there is a dog."}
    images = [noise_image(640, 480, 0), noise_image(20, 30, 1)]
    texts, rows = [], []
    for kind in ("chosen", "rejected"):
        for image in images:
            texts.append(f"{prompt} {answers[kind]}{processor.tokenizer.eos_token}")
            rows.append(image)
    batch = processor(images=rows, text=texts, padding=True, padding_side="right", return_tensors="pt")
    prompt_len = processor(images=rows, text=[prompt] * len(rows), padding=True, return_tensors="pt")
    prompt_lens = prompt_len["attention_mask"].sum(1)
    labels = batch["input_ids"].clone()
    for r, n in enumerate(prompt_lens.tolist()):
        labels[r, :n] = -100
    labels[batch["attention_mask"] == 0] = -100
    model.train()
    logits = model(**batch).logits
    logps = torch.log_softmax(logits[:, :-1].float(), -1)
    target = labels[:, 1:]
    picked = logps.gather(-1, target.clamp(min=0)[..., None])[..., 0] * (target != -100)
    seq = picked.sum(-1)
    chosen, rejected = seq[:2], seq[2:]
    loss = -torch.nn.functional.logsigmoid(0.1 * (chosen - rejected)).mean()
    loss.backward()
    model.eval()
    assert torch.isfinite(loss)
    assert (target != -100).sum(1).min() > 0  # every row scores some answer tokens
    assert model.model.multi_modal_projector.linear_1.weight.grad is not None
    assert model.model.image_newline.grad is not None


# --------------------------------------------------------------- 4. training sequences framed as at inference


def test_dpo_sequences_start_with_bos_and_answers_end_with_eos(tiny):
    """TRL's collator tokenizes the rendered template without special tokens; the vicuna template writes neither
    BOS nor EOS. After frame_for_training, every sequence starts with BOS (as inference tokenizes) and every
    answer's last trained token is EOS (as LLaVA was trained); generation gets one BOS, not two."""
    from trl.trainer.dpo_trainer import DataCollatorForVisionPreference

    from mmalign.models import generate
    from mmalign.train.chat_format import end_answers, frame_for_training

    model, _, out = tiny
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(out)
    tok = processor.tokenizer
    row = lambda: {  # noqa: E731
        "image": noise_image(640, 480, 0),
        "prompt": [{"role": "user", "content": "Is there a dog?"}],
        "chosen": [{"role": "assistant", "content": "No, there is no dog."}],
        "rejected": [{"role": "assistant", "content": "Yes."}],
    }
    collate = DataCollatorForVisionPreference(processor=processor, max_length=None)
    before = collate([row()])
    assert before["input_ids"][0, 0] != tok.bos_token_id  # the bug: no BOS, and EOS never trained
    assert tok.eos_token_id not in before["input_ids"][before["completion_mask"].bool()]

    suffix = frame_for_training(processor)
    assert suffix == tok.eos_token and frame_for_training(processor) == suffix  # idempotent
    batch = collate(end_answers([row()], suffix))
    assert (batch["input_ids"][:, 0] == tok.bos_token_id).all()
    for r in range(2):  # chosen, rejected
        completion = batch["input_ids"][r][batch["completion_mask"][r].bool()].tolist()
        assert tok.eos_token_id in completion[-2:]  # EOS, then at most the template's trailing space

    seen = []
    real_generate = model.generate

    def spy(**kwargs):
        seen.append(kwargs["input_ids"])
        return real_generate(**kwargs)

    model.generate = spy
    try:
        generate(model, processor, [noise_image(64, 48, 2)], ["Is there a dog?"], max_new_tokens=2)
    finally:
        model.generate = real_generate
    ids = seen[0][0].tolist()
    assert ids[0] == tok.bos_token_id and ids[1] != tok.bos_token_id


def test_a_template_that_frames_answers_itself_is_left_alone(tiny_model):
    """The default study's tiny LLaVA writes EOS after answers and its tokenizer adds no BOS: nothing changes."""
    from transformers import AutoProcessor

    from mmalign.train.chat_format import frame_for_training

    processor = AutoProcessor.from_pretrained(tiny_model[0])
    template = processor.chat_template
    assert frame_for_training(processor) == "" and processor.chat_template == template


def test_bdhs_masking_covers_every_image_feature_position_newlines_included(tiny):
    """BDHS hides image tokens from attention: on LLaVA-NeXT every packed feature (base tile, AnyRes tiles and
    the image-newline features) has an <image> token, so rho_th = 1 hides exactly as many positions as the
    model produces image features, per row of a left-padded batch of two aspect ratios."""
    from mmalign.bdhs import BDHSSettings, image_token_id, restrict

    model, processor, _ = tiny
    text = processor.apply_chat_template(user_turn(), add_generation_prompt=True, tokenize=False)
    images = [noise_image(640, 480, 0), noise_image(300, 1000, 1)]
    batch = processor(images=images, text=[text, text], padding=True, padding_side="left", return_tensors="pt")
    with torch.no_grad():
        features = model.get_image_features(pixel_values=batch["pixel_values"], image_sizes=batch["image_sizes"])
    features = features.pooler_output
    before = batch["attention_mask"].clone()
    masked = restrict(dict(batch), [0, 1], [("a", 0), ("b", 0)], BDHSSettings(rho_th=1.0), image_token_id(model))[
        "attention_mask"
    ]
    hidden = (before.bool() & ~masked.bool()).sum(1).tolist()
    assert hidden == [len(f) for f in features]
    assert hidden[0] != hidden[1]
    assert (masked.bool() == (before.bool() & (batch["input_ids"] != image_token_id(model)))).all()
