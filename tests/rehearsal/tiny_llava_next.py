"""A tiny random LLaVA-NeXT shaped like llava-hf/llava-v1.6-vicuna-7b-hf, the paper study's base model.

Nothing here touches the network. ``LLAVA_16_VICUNA_7B`` holds the repository's processor files and the model
configuration facts that decide how many image tokens a prompt gets (AnyRes tiles, unpadding, one image-newline
feature per row of the tile grid, the CLS token dropped by the ``default`` strategy). ``write_processor_files``
writes those files at full size or scaled down; ``build_tiny_llava_next`` saves a random
``LlavaNextForConditionalGeneration`` (about 140 thousand parameters, 0.6 MB) with the scaled files and a small BPE
tokenizer trained on given texts, in the repository's layout, so that ``AutoProcessor`` and
``AutoModelForImageTextToText`` load it like the real thing::

    from rehearsal.tiny_llava_next import build_tiny_llava_next  # tests/ is on sys.path under pytest
    model_dir = build_tiny_llava_next(tmp_path / "llava-next", ["Describe the image.", "A red circle."])

Where the files come from: the values are those published in llava-hf/llava-v1.6-vicuna-7b-hf
(``preprocessor_config.json``, ``processor_config.json``, ``chat_template.json``, ``config.json``), written
down from the repository as we know it; the Hub was not reachable when this was written, so they were not
re-downloaded. The chat template's text is the llava-hf vicuna template as transformers' own LLaVA-NeXT
processor test carries it (tests/models/llava_next/test_processing_llava_next.py).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

# ------------------------------------------------------------------------------ the real repository's files

REPO_ID = "llava-hf/llava-v1.6-vicuna-7b-hf"

# USER: <image>\n{prompt} ASSISTANT: -- images first, then text; an assistant turn is "ASSISTANT: {text} " (no
# </s>). Content must be a list of typed parts: a plain string content renders as nothing but the role.
VICUNA_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}"
    "{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

IMAGE_SIZE, PATCH_SIZE = 336, 14
IMAGE_GRID_PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]  # (height, width)
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

LLAVA_16_VICUNA_7B = {
    "preprocessor_config.json": {
        "aspect_ratio_setting": "anyres",
        "crop_size": {"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        "do_center_crop": True,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_pad": True,
        "do_rescale": True,
        "do_resize": True,
        "image_grid_pinpoints": IMAGE_GRID_PINPOINTS,
        "image_mean": CLIP_MEAN,
        "image_processor_type": "LlavaNextImageProcessor",
        "image_std": CLIP_STD,
        "processor_class": "LlavaNextProcessor",
        "resample": 3,  # bicubic
        "rescale_factor": 0.00392156862745098,
        "size": {"shortest_edge": IMAGE_SIZE},
    },
    "processor_config.json": {
        "image_token": "<image>",
        "num_additional_image_tokens": 1,  # CLIP's CLS token
        "patch_size": PATCH_SIZE,
        "processor_class": "LlavaNextProcessor",
        "vision_feature_select_strategy": "default",
    },
    "chat_template.json": {"chat_template": VICUNA_CHAT_TEMPLATE},
    # the facts of config.json that the processor and the feature packing depend on (the repository's file
    # also carries the 7B widths: vision 1024 x 24 layers, text 4096 x 32 layers, vocabulary 32064)
    "config.json": {
        "architectures": ["LlavaNextForConditionalGeneration"],
        "model_type": "llava_next",
        "image_grid_pinpoints": IMAGE_GRID_PINPOINTS,
        "image_token_index": 32000,
        "projector_hidden_act": "gelu",
        "use_image_newline_parameter": True,
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "default",
        "tie_word_embeddings": False,
        "text_config": {"model_type": "llama", "_name_or_path": "lmsys/vicuna-7b-v1.5", "vocab_size": 32064},
        "vision_config": {"model_type": "clip_vision_model", "image_size": IMAGE_SIZE, "patch_size": PATCH_SIZE},
    },
    # the Llama tokenizer's special tokens: <unk> 0, <s> 1, </s> 2; <image> 32000 and <pad> 32001 appended
    "special_tokens": {"unk": "<unk>", "bos": "<s>", "eos": "</s>", "image": "<image>", "pad": "<pad>"},
}

PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json", "chat_template.json")


# ------------------------------------------------------------------------------------------ scaling down


@dataclass(frozen=True)
class Scale:
    """Tile size and vision patch size; pinpoints scale with the tile (336 -> ``image_size``)."""

    image_size: int = IMAGE_SIZE
    patch_size: int = PATCH_SIZE

    def __post_init__(self):
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")

    def px(self, n: int) -> int:
        scaled = n * self.image_size / IMAGE_SIZE
        if scaled != int(scaled):
            raise ValueError(f"{n} px does not scale to a whole number at image_size {self.image_size}")
        return int(scaled)

    @property
    def pinpoints(self) -> list[list[int]]:
        return [[self.px(h), self.px(w)] for h, w in IMAGE_GRID_PINPOINTS]

    @property
    def patches_per_side(self) -> int:
        return self.image_size // self.patch_size


FULL = Scale()  # the repository's sizes: 24 x 24 patches per 336 px tile
TINY = Scale(28, 7)  # 4 x 4 patches per 28 px tile; pinpoints [[28, 56], [56, 28], [56, 56], [84, 28], [28, 84]]


def processor_files(scale: Scale = FULL) -> dict[str, dict]:
    """The repository's three processor files, with sizes, pinpoints and patch size scaled."""
    files = copy.deepcopy({name: LLAVA_16_VICUNA_7B[name] for name in PROCESSOR_FILES})
    pre = files["preprocessor_config.json"]
    pre["crop_size"] = {"height": scale.image_size, "width": scale.image_size}
    pre["size"] = {"shortest_edge": scale.image_size}
    pre["image_grid_pinpoints"] = scale.pinpoints
    files["processor_config.json"]["patch_size"] = scale.patch_size
    return files


def write_processor_files(out_dir: str | Path, scale: Scale = FULL, *, drop: tuple[str, ...] = ()) -> Path:
    """Write preprocessor_config.json, processor_config.json and chat_template.json as the repository has
    them (scaled by ``scale``). ``drop`` removes keys from processor_config.json, e.g. ``("patch_size",)`` for
    the repository's older revisions. Returns ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = processor_files(scale)
    for key in drop:
        files["processor_config.json"].pop(key)
    for name, content in files.items():
        (out / name).write_text(json.dumps(content, indent=2) + "\n")
    return out


# -------------------------------------------------------------------------------------------- tokenizer


def train_tokenizer(texts: list[str], vocab_size: int = 600):
    """A Llama-like BPE tokenizer trained on ``texts``: sentencepiece-style "▁" word starts, <unk> 0, <s> 1,
    </s> 2, <s> prepended to every encoding, <image> and <pad> appended after the learned vocabulary (as the
    repository appends them at 32000 and 32001)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    names = LLAVA_16_VICUNA_7B["special_tokens"]
    core = Tokenizer(models.BPE(unk_token=names["unk"], fuse_unk=True))
    core.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    core.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    alphabet = sorted(set("".join(texts)) | set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
    alphabet = sorted(set(alphabet) | set(".,:;?!'\"-()\n▁ "))
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[names["unk"], names["bos"], names["eos"]],
        initial_alphabet=alphabet,
        show_progress=False,
    )
    texts = [*texts, "USER: ASSISTANT:"]  # the chat template's words
    core.train_from_iterator(texts, trainer)
    bos = names["bos"]
    core.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, core.token_to_id(bos))]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token=names["unk"],
        bos_token=names["bos"],
        eos_token=names["eos"],
        model_max_length=4096,
        clean_up_tokenization_spaces=False,
    )
    tok.add_special_tokens({"additional_special_tokens": [names["image"]]})
    tok.add_special_tokens({"pad_token": names["pad"]})
    return tok


# ------------------------------------------------------------------------------------------------ model


@dataclass(frozen=True)
class Widths:
    """The tiny model's sizes (the real model: vision 1024 x 24 layers, text 4096 x 32 layers)."""

    vision_hidden: int = 32
    vision_layers: int = 2  # vision_feature_layer -2 reads the output of layer 1: layer 2 exists, unused
    vision_heads: int = 2
    text_hidden: int = 64
    text_layers: int = 2
    text_heads: int = 4


def tiny_config(tokenizer, scale: Scale = TINY, widths: Widths = Widths()):
    """A LlavaNextConfig with the repository's settings and tiny widths."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaNextConfig

    facts = LLAVA_16_VICUNA_7B["config.json"]
    vision = CLIPVisionConfig(
        hidden_size=widths.vision_hidden,
        intermediate_size=2 * widths.vision_hidden,
        num_hidden_layers=widths.vision_layers,
        num_attention_heads=widths.vision_heads,
        image_size=scale.image_size,
        patch_size=scale.patch_size,
        projection_dim=widths.vision_hidden,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=widths.text_hidden,
        intermediate_size=2 * widths.text_hidden,
        num_hidden_layers=widths.text_layers,
        num_attention_heads=widths.text_heads,
        num_key_value_heads=widths.text_heads,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    return LlavaNextConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids(LLAVA_16_VICUNA_7B["special_tokens"]["image"]),
        image_grid_pinpoints=scale.pinpoints,
        projector_hidden_act=facts["projector_hidden_act"],
        vision_feature_layer=facts["vision_feature_layer"],
        vision_feature_select_strategy=facts["vision_feature_select_strategy"],
        image_seq_length=scale.patches_per_side**2,
        tie_word_embeddings=False,
    )


def tiny_model(tokenizer, scale: Scale = TINY, widths: Widths = Widths(), seed: int = 0):
    """A random LlavaNextForConditionalGeneration (float32) with generation defaults set from the tokenizer."""
    import torch
    from transformers import LlavaNextForConditionalGeneration

    torch.manual_seed(seed)
    model = LlavaNextForConditionalGeneration(tiny_config(tokenizer, scale, widths))
    gen = model.generation_config
    gen.bos_token_id, gen.eos_token_id, gen.pad_token_id = (
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
    )
    return model.eval()


def build_tiny_llava_next(
    out_dir: str | Path,
    texts: list[str],
    *,
    seed: int = 0,
    scaled: bool = True,
    widths: Widths = Widths(),
    vocab_size: int = 600,
) -> Path:
    """Save a tiny random LLaVA-NeXT into ``out_dir`` in the repository's layout: config.json,
    generation_config.json, model.safetensors, tokenizer.json + tokenizer_config.json, preprocessor_config.json,
    processor_config.json, chat_template.json. ``scaled``: 28 px tiles of 7 px patches (``TINY``) instead of the
    repository's 336 / 14 (``FULL``, far slower). Returns ``out_dir``."""
    out = Path(out_dir)
    scale = TINY if scaled else FULL
    tokenizer = train_tokenizer(texts, vocab_size=vocab_size)
    model = tiny_model(tokenizer, scale, widths, seed)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    write_processor_files(out, scale)
    return out


def image_tokens_per_image(processor, sizes: list[tuple[int, int]]) -> list[int]:
    """How many <image> tokens the processor writes for images of the given (height, width)."""
    return list(processor._get_num_multimodal_tokens(image_sizes=sizes)["num_image_tokens"])
