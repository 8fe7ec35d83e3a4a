"""Build and SFT-train the default study's base model: a tiny LLaVA on the synthetic world.

The result is an ordinary Hugging Face model directory (``LlavaForConditionalGeneration`` +
``LlavaProcessor``) that ``AutoModelForImageTextToText`` / ``AutoProcessor`` load, exactly what the
paper study downloads for LLaVA-1.6. Three steps:

1. components: a word-level tokenizer over the world's language (``tokenizers``), a CLIP-style vision
   tower whose patch equals a grid cell (one image token per cell), a Llama-style LM, a processor
   with a chat template;
2. vision pretraining: a few hundred steps of per-patch shape/colour (and letter) classification, a
   stand-in for a pretrained CLIP. Without it the LM learns to ignore the image (measured: docs/synthetic-world.md);
3. SFT with TRL's ``SFTTrainer`` on the world's SFT split (prompt-completion, loss on answers only).
"""

from __future__ import annotations

import logging
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from . import language as lang
from .world import COLOURS, LETTERS, POSITION_WORDS, SHAPES, SIZES, Scene, WorldSettings

log = logging.getLogger(__name__)

SPECIAL_TOKENS = {"pad": "<pad>", "unk": "<unk>", "bos": "<s>", "eos": "</s>", "image": "<image>"}

# USER: question <image> ASSISTANT: answer</s>
# The question comes *before* the image tokens (LLaVA puts it after). With a causal 2-layer LM this lets each
# image token see the question, so "is there a circle?" becomes a local match at the image token instead of
# a two-hop search from the last position; without it the tiny model answers yes/no from the prior alone.
# Whitespace is irrelevant to the word-level tokenizer; the prompt rendered with add_generation_prompt is a
# string prefix of prompt + answer, as TRL's collators need.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}USER: "
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}"
    "{%- for c in message['content'] if c['type'] == 'text' -%}{{ c['text'] }} {% endfor -%}"
    "{%- for c in message['content'] if c['type'] == 'image' -%}<image> {% endfor -%}"
    "{%- endif %} "
    "{%- elif message['role'] == 'assistant' -%}ASSISTANT: "
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for c in message['content'] -%}"
    "{%- if c['type'] == 'text' -%}{{ c['text'] }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}</s> "
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}ASSISTANT:{%- endif -%}"
)


@dataclass
class TinyLlavaSettings:
    """Architecture and training of the tiny base model (config ``base_model.build``)."""

    seed: int = 0
    vision_hidden: int = 64
    vision_layers: int = 2
    vision_heads: int = 4
    text_hidden: int = 128
    text_layers: int = 2
    text_heads: int = 4
    max_positions: int = 96
    vision_pretrain_steps: int = 300
    vision_pretrain_lr: float = 3e-3
    # stage 1 also classifies each cell's letter (and aligns it with the letter's word), as CLIP can read text:
    # without it reading letters (VQAT) is learnt in SFT or not at all, and differs most across build seeds
    vision_pretrain_letters: bool = False
    sft_scenes: int = 3000  # at most this many SFT-split scenes are used
    sft_existence_per_scene: int = 2  # yes/no existence questions per scene (mostly one-word answers)
    sft_questions_per_scene: int = 1  # questions of the other families per scene
    sft_short_answer_prob: float = 0.7  # share of existence questions that ask for one word
    sft_epochs: float = 8
    sft_learning_rate: float = 5e-4
    sft_batch_size: int = 64
    sft_families: list[str] = field(default_factory=lambda: list(lang.FAMILIES))
    # share of SFT examples trained with every image token hidden from the LM (BDHS's rho_th = 1 mask), so
    # that a blind model answers fluently from the language prior, as a text-pretrained LLM would
    sft_image_dropout: float = 0.0

    @classmethod
    def from_config(cls, cfg: dict) -> TinyLlavaSettings:
        return cls(**cfg)


# ------------------------------------------------------------------------------------ components


def world_vocabulary() -> list[str]:
    """Every word the world's language can produce, found by rendering every template."""
    from tokenizers.pre_tokenizers import Whitespace

    texts = [
        *lang.DESCRIPTION_PROMPTS, *lang.EXISTENCE_PROMPTS, *lang.ATTRIBUTE_PROMPTS.values(), *lang.COUNT_PROMPTS,
        *lang.POSITION_PROMPTS, *lang.LETTER_PROMPTS, *lang.COMPOSITIONAL_PROMPTS, *lang.COUNT_TEMPLATES,
        *lang.OBJECT_TEMPLATES, lang.SHORT_SUFFIX, "user: assistant:",
        "yes, there is no letter on the has the letter on it. is are object objects",
        " ".join(SHAPES), " ".join(COLOURS), " ".join(SIZES), " ".join(LETTERS), " ".join(POSITION_WORDS.values()),
        " ".join(lang.NUMBER_WORDS), " ".join(s + "s" for s in SHAPES), "? . , !",
    ]  # fmt: skip
    words: set[str] = set()
    splitter = Whitespace()
    for text in texts:
        for piece, _ in splitter.pre_tokenize_str(text.lower().replace("{", " ").replace("}", " ")):
            words.add(piece)
    return sorted(words)


def build_tokenizer():
    """A word-level tokenizer (HF ``tokenizers``), lower-cased, punctuation split off."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = list(SPECIAL_TOKENS.values())
    vocab = {tok: i for i, tok in enumerate(specials + world_vocabulary())}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL_TOKENS["unk"]))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=SPECIAL_TOKENS["pad"],
        unk_token=SPECIAL_TOKENS["unk"],
        bos_token=SPECIAL_TOKENS["bos"],
        eos_token=SPECIAL_TOKENS["eos"],
        extra_special_tokens={"image_token": SPECIAL_TOKENS["image"]},
        clean_up_tokenization_spaces=True,  # "yes ." -> "yes." when decoding
        model_max_length=512,
    )
    tok.add_special_tokens({"additional_special_tokens": [SPECIAL_TOKENS["image"]]})
    return tok


def build_processor(tokenizer, world: WorldSettings):
    from transformers import LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": world.image_size},
        crop_size={"height": world.image_size, "width": world.image_size},
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=world.cell,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # the CLS token, dropped by the 'default' strategy
        chat_template=CHAT_TEMPLATE,
        image_token=SPECIAL_TOKENS["image"],
    )


def build_model(settings: TinyLlavaSettings, tokenizer, world: WorldSettings):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    torch.manual_seed(settings.seed)
    vision = CLIPVisionConfig(
        hidden_size=settings.vision_hidden,
        intermediate_size=2 * settings.vision_hidden,
        num_hidden_layers=settings.vision_layers,
        num_attention_heads=settings.vision_heads,
        image_size=world.image_size,
        patch_size=world.cell,
        projection_dim=settings.vision_hidden,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=settings.text_hidden,
        intermediate_size=2 * settings.text_hidden,
        num_hidden_layers=settings.text_layers,
        num_attention_heads=settings.text_heads,
        num_key_value_heads=settings.text_heads,
        max_position_embeddings=settings.max_positions,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS["image"]),
        image_seq_length=world.grid * world.grid,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        tie_word_embeddings=True,
    )
    model = LlavaForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.max_new_tokens = 64
    model.generation_config.do_sample = False
    return model


# ---------------------------------------------------------------------------- vision pretraining


# what stage 1 teaches the vision tower to see in a cell: each property's words, in class-id order (0 = none)
CELL_PROPERTIES = {"shape": SHAPES, "colour": list(COLOURS), "letter": LETTERS}


def _cell_targets(scene: Scene, world: WorldSettings) -> tuple[list[int], list[int], list[int]]:
    """Per-cell class ids (0 = empty / no letter) for shape, colour and letter, in the vision tower's patch order
    (row-major)."""
    targets = {name: [0] * (world.grid * world.grid) for name in CELL_PROPERTIES}
    for obj in scene.objects:
        i = obj.row * world.grid + obj.col
        for name, words in CELL_PROPERTIES.items():
            value = getattr(obj, name)
            targets[name][i] = 1 + words.index(value) if value else 0
    return tuple(targets.values())


def pretrain_vision(
    model,
    processor,
    tokenizer,
    scenes: list[Scene],
    images_dir: Path,
    world: WorldSettings,
    settings: TinyLlavaSettings,
) -> list[float]:
    """Stage 1, a stand-in for a pretrained CLIP plus LLaVA's projector alignment. Returns the losses.

    * the vision tower learns what is in each cell (per-patch shape and colour classification; with
      ``vision_pretrain_letters`` the letter written on it too);
    * the projector learns to map each cell's features onto the LM's embeddings of the words that name it
      ("red" + "circle" [+ "k"]; zero for an empty cell), as LLaVA's first stage aligns image tokens with words.
    Without this stage the tiny LM learns to ignore the image (docs/synthetic-world.md).
    """
    from PIL import Image

    tower, projector = model.model.vision_tower, model.model.multi_modal_projector
    embed = model.get_input_embeddings().weight.detach()
    # letters last: without them the heads are created, and the losses summed, exactly as before they existed
    taught = ["shape", "colour", *(["letter"] if settings.vision_pretrain_letters else [])]
    heads = torch.nn.ModuleDict(
        {name: torch.nn.Linear(settings.vision_hidden, 1 + len(CELL_PROPERTIES[name])) for name in taught}
    )
    word_vecs = {  # row 0: the zero vector of an empty cell
        name: torch.cat([torch.zeros(1, embed.shape[1]), embed[tokenizer.convert_tokens_to_ids(CELL_PROPERTIES[name])]])
        for name in taught
    }
    images = [Image.open(images_dir / f"{s.id}.png").convert("RGB") for s in scenes]
    pixels = processor.image_processor(images, return_tensors="pt")["pixel_values"]
    per_scene = [dict(zip(CELL_PROPERTIES, _cell_targets(s, world))) for s in scenes]
    targets = {name: torch.tensor([t[name] for t in per_scene]) for name in taught}
    params = list(tower.parameters()) + list(projector.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=settings.vision_pretrain_lr)
    gen = torch.Generator().manual_seed(settings.seed)
    losses = []
    tower.train()
    for step in range(settings.vision_pretrain_steps):
        idx = torch.randint(len(scenes), (64,), generator=gen)
        feats = tower(pixel_values=pixels[idx]).last_hidden_state[:, 1:]  # drop CLS: one token per cell
        cls_loss = sum(
            torch.nn.functional.cross_entropy(heads[name](feats).flatten(0, 1), targets[name][idx].flatten())
            for name in taught
        )
        words = sum(word_vecs[name][targets[name][idx]] for name in taught)
        align_loss = torch.nn.functional.mse_loss(projector(feats), words) / embed.pow(2).mean()
        loss = cls_loss + align_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % 100 == 0 or step == settings.vision_pretrain_steps - 1:
            log.info(
                "stage 1 step %d: classification %.4f, projector alignment %.4f",
                step,
                cls_loss.item(),
                align_loss.item(),
            )
    return losses


# ------------------------------------------------------------------------------------------- SFT


def sft_examples(scenes: list[Scene], images_dir: Path, settings: TinyLlavaSettings) -> list[dict]:
    """Prompt-completion examples: one description and a few questions per scene, ground-truth answers."""
    rng = random.Random(settings.seed)
    families = [f for f in settings.sft_families if f != "description"]
    rows = []
    for scene in scenes[: settings.sft_scenes]:
        tasks = []
        if "description" in settings.sft_families:
            tasks.append(lang.make_task("description", scene, rng))
        if "existence" in families:
            for _ in range(settings.sft_existence_per_scene):
                short = rng.random() < settings.sft_short_answer_prob
                tasks.append(lang.make_task("existence", scene, rng, short=short))
        others = [f for f in families if f != "existence"]
        for _ in range(settings.sft_questions_per_scene if others else 0):
            tasks.append(lang.make_task(rng.choice(others), scene, rng))
        for task in tasks:
            ans = lang.answer(task, scene, rng)
            rows.append(
                {
                    "image": str(images_dir / f"{scene.id}.png"),
                    "prompt": [{"role": "user", "content": task.prompt}],
                    "completion": [{"role": "assistant", "content": ans.text}],
                }
            )
    return rows


def image_dropout_collator(processor, settings: TinyLlavaSettings):
    """TRL's vision collator, with all image tokens of a random share of examples masked out of attention
    (positions unchanged), exactly as BDHS masks them at rho_th = 1."""
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from mmalign.models import unmasked_position_ids

    image_token = processor.tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS["image"])
    gen = torch.Generator().manual_seed(settings.seed)

    class ImageDropoutCollator(DataCollatorForVisionLanguageModeling):
        def torch_call(self, examples):
            batch = super().torch_call(examples)
            attention = batch["attention_mask"]
            batch["position_ids"] = unmasked_position_ids(attention)
            blind = torch.rand(len(attention), generator=gen) < settings.sft_image_dropout
            hide = blind[:, None] & (batch["input_ids"] == image_token)
            batch["attention_mask"] = attention.masked_fill(hide, 0)
            return batch

    return ImageDropoutCollator(processor=processor, completion_only_loss=True)


def run_sft(model, processor, rows: list[dict], settings: TinyLlavaSettings, work_dir: Path) -> dict:
    from datasets import Dataset
    from datasets import Image as ImageFeature
    from trl import SFTConfig, SFTTrainer

    dataset = Dataset.from_list(rows).cast_column("image", ImageFeature())
    args = SFTConfig(
        output_dir=str(work_dir),
        per_device_train_batch_size=settings.sft_batch_size,
        num_train_epochs=settings.sft_epochs,
        learning_rate=settings.sft_learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=20,
        logging_steps=20,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        max_length=None,
        seed=settings.seed,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )
    collator = image_dropout_collator(processor, settings) if settings.sft_image_dropout > 0 else None
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=processor, data_collator=collator
    )
    result = trainer.train()
    return {"train_loss": result.training_loss, "steps": result.global_step, "log_history": trainer.state.log_history}


def build_base_model(
    world: WorldSettings, settings: TinyLlavaSettings, scenes: list[Scene], images_dir: Path, out_dir: Path
) -> dict:
    """The whole default-study base model: components, vision pretraining, SFT, save. Returns metrics."""
    from transformers import set_seed

    set_seed(settings.seed)
    tokenizer = build_tokenizer()
    processor = build_processor(tokenizer, world)
    model = build_model(settings, tokenizer, world)
    log.info("tiny LLaVA with %d parameters, vocabulary %d", sum(p.numel() for p in model.parameters()), len(tokenizer))
    vision_losses = pretrain_vision(model, processor, tokenizer, scenes, images_dir, world, settings)
    rows = sft_examples(scenes, images_dir, settings)
    log.info("SFT on %d examples from %d scenes", len(rows), min(len(scenes), settings.sft_scenes))
    sft = run_sft(model, processor, rows, settings, out_dir / "_sft_work")
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    _remove_tree(out_dir / "_sft_work")
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocabulary": len(tokenizer),
        "vision_pretrain_final_loss": vision_losses[-1],
        "sft_examples": len(rows),
        "settings": asdict(settings),
        **sft,
    }


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
