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


def _stage_one(small_world, letters: bool, steps: int):
    """A tiny LLaVA after `steps` of vision pretraining (stage 1) on the small world's SFT split."""
    from mmalign.synthetic.tinyllava import TinyLlavaSettings, build_model, pretrain_vision
    from mmalign.synthetic.world import load_scenes

    world, scenes_path, images = small_world
    settings = TinyLlavaSettings(vision_hidden=32, text_hidden=32, vision_pretrain_steps=steps,
                                 vision_pretrain_letters=letters)  # fmt: skip
    torch.manual_seed(0)
    tokenizer = build_tokenizer()
    processor = build_processor(tokenizer, world)
    model = build_model(settings, tokenizer, world)
    scenes = load_scenes(scenes_path, "sft")
    losses = pretrain_vision(model, processor, tokenizer, scenes, images, world, settings)
    return model, processor, tokenizer, scenes, losses


def test_stage_one_with_letters_teaches_the_projector_to_say_each_cells_letter(small_world):
    """vision_pretrain_letters: the projected image token of a lettered cell comes out nearer the embedding of its
    own letter's word than of the other letters'; without it the letter is not a target (the loss has no letter
    term, so it starts lower) and the projector does not learn it."""
    from PIL import Image

    from mmalign.synthetic.tinyllava import _cell_targets
    from mmalign.synthetic.world import COLOURS, LETTERS, SHAPES

    def letter_hits(letters: bool) -> tuple[float, list[float]]:
        model, processor, tokenizer, scenes, losses = _stage_one(small_world, letters, steps=300)
        world, _, images = small_world
        words = model.get_input_embeddings().weight.detach()
        embed = words[tokenizer.convert_tokens_to_ids(LETTERS)]
        shape_words = words[tokenizer.convert_tokens_to_ids(SHAPES)]
        colour_words = words[tokenizer.convert_tokens_to_ids(list(COLOURS))]
        hits, cells = 0, 0
        with torch.no_grad():
            for scene in scenes[:60]:
                pixels = processor.image_processor([Image.open(images / f"{scene.id}.png").convert("RGB")],
                                                   return_tensors="pt")["pixel_values"]  # fmt: skip
                tokens = model.model.multi_modal_projector(
                    model.model.vision_tower(pixel_values=pixels).last_hidden_state[:, 1:]
                )[0]
                shapes, colours, letters = _cell_targets(scene, world)
                for cell, letter in enumerate(letters):
                    if letter:  # what the token says beyond the cell's shape and colour words
                        rest = tokens[cell] - shape_words[shapes[cell] - 1] - colour_words[colours[cell] - 1]
                        hits += int((rest @ embed.T).argmax() == letter - 1)
                        cells += 1
        assert cells >= 10
        return hits / cells, losses

    with_letters, losses_with = letter_hits(True)
    without, losses_without = letter_hits(False)
    assert with_letters >= 0.8 > without + 0.3, (with_letters, without)
    assert losses_with[0] > losses_without[0] and losses_with[-1] < losses_with[0] / 10
