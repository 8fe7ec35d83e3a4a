"""The GPU memory plan (mmalign.memory_plan): every count it makes checked against the real thing on a tiny
LLaVA-NeXT (parameters, LoRA weights, the KV cache generate() keeps, image tokens, saved activations), and the
plan of config/paper.yaml on the 7B configuration in the repository, which must fit an 80 GB GPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from mmalign.memory_plan import (
    ModelShapes,
    _probe_model,
    _training_forward_bytes,
    main,
    max_image_tokens,
    measure_activation_bytes,
    study_plan,
)

REPO = Path(__file__).resolve().parents[1]
FULL_CONFIG = REPO / "benchmarks" / "models" / "llava-v1.6-vicuna-7b-hf"


@pytest.fixture(scope="module")
def tiny_next(tmp_path_factory):
    from rehearsal.tiny_llava_next import build_tiny_llava_next

    texts = ["Describe the image.", "A red circle left of a blue square.", "Is there a cat? Yes."]
    return build_tiny_llava_next(tmp_path_factory.mktemp("next") / "model", texts)


def test_parameter_and_lora_counts_are_those_of_the_model_peft_builds(tiny_next):
    from transformers import AutoConfig, AutoModelForImageTextToText

    from mmalign.train.lora import attach_lora
    from mmalign.train.settings import DPOSettings

    shapes = ModelShapes.from_config(AutoConfig.from_pretrained(tiny_next))
    model = AutoModelForImageTextToText.from_pretrained(tiny_next)
    assert shapes.parameters == sum(p.numel() for p in model.parameters())
    peft = attach_lora(model, DPOSettings(lora_r=4, lora_alpha=8))
    lora = sum(p.numel() for n, p in peft.named_parameters() if "lora_" in n)
    projector = sum(p.numel() for n, p in peft.named_parameters() if p.requires_grad and "lora_" not in n)
    assert shapes.lora_parameters(4) == lora
    assert shapes.projector_parameters == projector


def test_the_kv_cache_is_the_size_generate_keeps(tiny_next):
    from PIL import Image
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    from mmalign.models import user_message

    processor = AutoProcessor.from_pretrained(tiny_next)
    model = AutoModelForImageTextToText.from_pretrained(tiny_next).eval()
    text = processor.apply_chat_template(user_message("Describe the image."), add_generation_prompt=True)
    images = [Image.new("RGB", (56, 56), "red"), Image.new("RGB", (40, 60), "blue")]
    batch = processor(images=images, text=[text, text], padding=True, padding_side="left", return_tensors="pt")
    out = model.generate(**batch, max_new_tokens=5, min_new_tokens=5, do_sample=False, return_dict_in_generate=True)
    cache = out.past_key_values
    kept = sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers)
    positions = cache.layers[0].keys.shape[-2]
    assert positions == batch["input_ids"].shape[1] + 5 - 1  # the last new token is never fed back
    shapes = ModelShapes.from_config(AutoConfig.from_pretrained(tiny_next))
    assert shapes.kv_cache_bytes(2, positions, dtype_bytes=4) == kept


def test_image_tokens_are_the_processors_count_at_the_largest_pinpoint(tiny_next):
    from transformers import AutoConfig, AutoProcessor

    from rehearsal.tiny_llava_next import image_tokens_per_image

    config = AutoConfig.from_pretrained(tiny_next)
    processor = AutoProcessor.from_pretrained(tiny_next)
    sizes = [tuple(p) for p in config.image_grid_pinpoints]
    assert max_image_tokens(config) == max(image_tokens_per_image(processor, sizes))
    assert max_image_tokens(AutoConfig.from_pretrained(FULL_CONFIG)) == 2928  # LLaVA-1.6 at 672 x 672


def test_saved_activations_grow_linearly_with_tokens_and_layers(tiny_next):
    from transformers import AutoConfig

    text = AutoConfig.from_pretrained(tiny_next).get_text_config().to_dict()
    text = {**text, "hidden_size": 64, "intermediate_size": 160, "num_attention_heads": 4, "num_key_value_heads": 2}
    key = json.dumps(text, sort_keys=True)
    at_64 = measure_activation_bytes(key, "float32", 4, tokens=64)
    at_128 = measure_activation_bytes(key, "float32", 4, tokens=128)
    assert at_64.per_layer == pytest.approx(at_128.per_layer, rel=0.02)
    assert at_64.boundary == 64 * 4
    # four layers: the one-layer model's bytes plus three layers of per-layer bytes
    measured = _training_forward_bytes(_probe_model(text, 4, 4, torch.float32), 96)
    predicted = 96 * (at_128.rest + 4 * at_128.per_layer)
    assert measured == pytest.approx(predicted, rel=0.05)


def test_the_paper_study_fits_an_80_gb_gpu_at_its_configured_batches_and_a_larger_one_is_flagged(capsys, tmp_path):
    from transformers import AutoConfig

    from mmalign.config import apply_defaults

    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    apply_defaults(paper)
    rows = study_plan(paper, AutoConfig.from_pretrained(FULL_CONFIG))
    assert {r["rule"] for r in rows} >= {"train", "reference_logps", "evaluate", "build_bdhs_pairs",
                                         "train_reward_model", "eval_reward_model"}  # fmt: skip
    assert all(r["fits"] for r in rows), [r for r in rows if not r["fits"]]
    dpo = next(r for r in rows if r["what"].startswith("dpo "))
    assert dpo["weights"] == pytest.approx(14.1, abs=0.1)  # 7.06B parameters in bfloat16
    assert dpo["largest batch that fits"] >= 4
    paper["pairsets"]["bdhs_attn"]["batch_size"] = 64
    too_big = tmp_path / "paper.yaml"
    too_big.write_text(yaml.safe_dump(paper))
    assert main([str(too_big), "--model-config", str(FULL_CONFIG)]) == 1
    assert "bdhs_attn: guided answers" in capsys.readouterr().out
