"""The default study's base model: real HF components, a chat template TRL can split, training that learns."""

from __future__ import annotations

import random

import torch

from mmalign.synthetic import language as lang
from mmalign.synthetic.tinyllava import CHAT_TEMPLATE, build_processor, build_tokenizer, world_vocabulary
from mmalign.synthetic.world import WorldSettings, generate_scenes


def test_tokenizer_covers_the_world_language_without_unknowns():
    tok = build_tokenizer()
    rng = random.Random(0)
    for scene in generate_scenes(WorldSettings(seed=0, split_sizes={"sft": 60, "preference": 0, "eval": 1})):
        for family in lang.FAMILIES:
            task = lang.make_task(family, scene, rng)
            for text in (task.prompt, lang.answer(task, scene, rng).text):
                ids = tok(text, add_special_tokens=False).input_ids
                assert tok.unk_token_id not in ids, text
                assert tok.decode(ids) == text.lower()  # decoding restores the text exactly
    assert len(world_vocabulary()) < 200


def test_chat_template_prompt_is_a_prefix_of_prompt_plus_answer():
    processor = build_processor(build_tokenizer(), WorldSettings())
    user = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "is there a star?"}]}]
    prompt = processor.apply_chat_template(user, add_generation_prompt=True, tokenize=False)
    full = processor.apply_chat_template(user + [{"role": "assistant", "content": "yes."}], tokenize=False)
    assert full.startswith(prompt) and full.rstrip().endswith("yes.</s>")
    assert prompt.count("<image>") == 1 and prompt.index("star") < prompt.index("<image>")
    assert processor.chat_template == CHAT_TEMPLATE


def test_processor_expands_one_image_token_per_grid_cell():
    from PIL import Image

    world = WorldSettings()
    processor = build_processor(build_tokenizer(), world)
    batch = processor(images=[Image.new("RGB", (48, 48))], text=["USER: hi <image> ASSISTANT:"], return_tensors="pt")
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    assert int((batch["input_ids"] == image_id).sum()) == world.grid * world.grid
    assert tuple(batch["pixel_values"].shape) == (1, 3, 48, 48)


def test_built_model_is_an_ordinary_hf_directory_and_sft_learned(tiny_model):
    from transformers import AutoModelForImageTextToText, AutoProcessor, LlavaForConditionalGeneration

    model_dir, metrics = tiny_model
    model = AutoModelForImageTextToText.from_pretrained(model_dir)
    processor = AutoProcessor.from_pretrained(model_dir)
    assert isinstance(model, LlavaForConditionalGeneration)
    assert processor.chat_template == CHAT_TEMPLATE
    losses = [e["loss"] for e in metrics["log_history"] if "loss" in e]
    assert metrics["steps"] > 0 and metrics["train_loss"] > 0
    assert metrics["vision_pretrain_final_loss"] < 10
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert losses == [] or losses[-1] < losses[0] * 1.5


def test_generation_returns_text_for_every_prompt(tiny_model, small_world):
    from PIL import Image

    from mmalign.models import generate, load_policy
    from mmalign.synthetic.world import load_scenes

    model, processor = load_policy(tiny_model[0])
    _, scenes_path, images = small_world
    scenes = load_scenes(scenes_path, "eval")[:5]
    imgs = [Image.open(images / f"{s.id}.png").convert("RGB") for s in scenes]
    prompts = ["is there a circle in the image? answer with one word."] * 5
    batched = generate(model, processor, imgs, prompts, max_new_tokens=6, batch_size=5)
    single = [generate(model, processor, [im], [p], max_new_tokens=6, batch_size=1)[0] for im, p in zip(imgs, prompts)]
    assert len(batched) == 5 and all(isinstance(t, str) for t in batched)
    assert batched == single  # left padding does not change greedy answers


def test_image_dropout_collator_hides_image_tokens_of_some_rows_only(small_world):
    from PIL import Image

    from mmalign.synthetic.tinyllava import TinyLlavaSettings, image_dropout_collator

    world, _, images = small_world
    processor = build_processor(build_tokenizer(), world)
    examples = [
        {"images": [Image.open(next(images.iterdir())).convert("RGB")],
         "prompt": [{"role": "user", "content": "is there a star?"}],
         "completion": [{"role": "assistant", "content": "no."}]}
        for _ in range(64)
    ]  # fmt: skip
    batch = image_dropout_collator(processor, TinyLlavaSettings(sft_image_dropout=0.5))(examples)
    image = batch["input_ids"] == processor.tokenizer.convert_tokens_to_ids("<image>")
    hidden_rows = ((batch["attention_mask"] == 0) & image).any(-1)
    assert 10 < int(hidden_rows.sum()) < 54  # about half the rows
    assert bool((batch["attention_mask"][hidden_rows][image[hidden_rows]] == 0).all())  # all their image tokens
    assert bool((batch["attention_mask"][~hidden_rows][image[~hidden_rows]] == 1).all())
    assert bool((batch["labels"][:, :5] == -100).all())  # the prompt is still masked out of the loss
    positions = batch["position_ids"]
    assert bool((positions[:, 1:] - positions[:, :-1] <= 1).all())  # hiding tokens does not shift positions
