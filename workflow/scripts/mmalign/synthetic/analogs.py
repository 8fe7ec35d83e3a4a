"""Synthetic analogs of VLFeedback and RLHF-V, built by the same pair-set rules as the real data sets.

``vlfeedback_analog`` (VLFeedback: 4 responses per prompt from a pool of 12 MLLMs, ranked by GPT-4V, best vs
worst): prompts of every task family, part of them in wordings the base model never saw in SFT (VLFeedback's
prompts come from 9 instruction sets); each prompt gets ``responses_per_prompt`` responses from a seeded draw of a
pool of "models" -- the ground-truth answer (``reference``, the strong-model analog of GPT-4V), the base model
greedy (``base``, the analog of LLaVA-1.5-7B: the policy's own family), sampled at temperatures, with part of its
image tokens hidden (a weaker-sighted model), and prior-corrupted reference answers (a hallucinating model).
The exact judge ranks them (``language.Assessment.rank_key``: a silent response loses, then the highest net score =
true - 2 x false claims, then the fewest false claims; ties broken by a seeded draw); chosen = best, rejected = worst.
Each response's model goes to ``meta.chosen_model`` / ``meta.rejected_model`` so variants can keep one model's chosen
responses.

``rlhfv_analog`` (RLHF-V: human annotators correct the hallucinated segments of a model's answer; the corrected
answer is chosen, the original rejected): the base model answers greedily; every sentence the exact judge finds a
false claim in is replaced by the ground-truth sentence about the same object / question, or removed when it is
about an object that is not there. Answers without a false claim have nothing to correct and make no pair
(counted as ``nothing_to_correct``).
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from mmalign.bdhs import BDHSSettings, image_token_id, restrict
from mmalign.models import generate, load_policy
from mmalign.schema import Manifest, check_drop_rate, write_pairs
from mmalign.seeding import stable_seed

from . import language as lang
from .world import Scene, WorldSettings, load_scenes

log = logging.getLogger(__name__)

# Prompt wordings outside the SFT templates, built from words the world's language already has (the tiny model's
# word-level vocabulary); existence questions keep the "is there a ..." form the exact judge reads.
NOVEL_PROMPTS = {
    "description": ["what can you see in this picture?", "describe the shapes in the image.", "what is in this image?"],
    "existence": ["is there a {shape} in this picture?", "is there a {shape} in this image?"],
    "attribute": {
        "colour": ["which colour is the {shape} in the image?", "what colour is the {shape} in this picture?"],
        "size": ["is the {shape} in the image small or large?"],
    },
    "count": ["how many objects can you see in this picture?", "how many shapes are in the image?"],
    "position": ["where in the image is the {shape}?", "where is the {shape} in this picture?"],
    "letter": ["what letter is written on the {shape}?", "which letter can you see on the {shape}?"],
    "compositional": {"colour": ["which colour is the shape at the {pos}?"], "shape": ["which shape is at the {pos}?"]},
}


@dataclass
class PoolModel:
    """One response source of the VLFeedback analog's pool."""

    name: str
    kind: str  # reference | prior_corrupted | base
    temperature: float = 0.0  # base: 0 = greedy
    rho_th: float = 0.0  # base: share of image tokens hidden (BDHS-style attention masking), 0 = none


def default_pool() -> list[dict]:
    return [
        {"name": "reference", "kind": "reference"},
        {"name": "base", "kind": "base"},
        {"name": "base_t07", "kind": "base", "temperature": 0.7},
        {"name": "base_t10", "kind": "base", "temperature": 1.0},
        {"name": "base_masked", "kind": "base", "rho_th": 0.5},
        {"name": "prior", "kind": "prior_corrupted"},
    ]


@dataclass
class VLFeedbackAnalogSettings:
    seed: int = 0
    max_scenes: int | None = None
    prompts_per_scene: int = 2
    families: list[str] = field(default_factory=lambda: list(lang.FAMILIES))
    novel_prompt_prob: float = 0.5  # share of prompts in a wording the base model did not see in SFT
    short_answer_prob: float = 0.5
    responses_per_prompt: int = 4
    pool: list[dict] = field(default_factory=default_pool)
    max_new_tokens: int = 48
    batch_size: int = 64
    max_drop_rate: float = 0.05


@dataclass
class RLHFVAnalogSettings:
    seed: int = 0
    max_scenes: int | None = None
    prompts_per_scene: int = 3
    families: list[str] = field(default_factory=lambda: list(lang.FAMILIES))
    description_share: float = 0.5  # RLHF-V is mostly detailed descriptions; the rest are questions
    short_answer_prob: float = 0.5
    max_new_tokens: int = 48
    batch_size: int = 64
    max_drop_rate: float = 0.8  # answers without a hallucination are not annotated: many rows make no pair


# --------------------------------------------------------------------------------------- prompts


def novel_wording(task: lang.Task, rng: random.Random) -> lang.Task:
    options = NOVEL_PROMPTS[task.family]
    if isinstance(options, dict):
        options = options[task.attribute]
    prompt = rng.choice(options).format(shape=task.shape, pos=task.position)
    if task.short:
        prompt = f"{prompt} {lang.SHORT_SUFFIX}"
    return replace(task, prompt=prompt)


def draw_task(family: str, scene: Scene, rng: random.Random, short_prob: float) -> lang.Task:
    return lang.make_task(family, scene, rng, short=rng.random() < short_prob if family == "existence" else None)


# ------------------------------------------------------------------------------------ generation


def generate_answers(
    model,
    processor,
    images: list,
    prompts: list[str],
    ids: list[str],
    *,
    temperature: float,
    rho_th: float,
    max_new_tokens: int,
    batch_size: int,
    seed: int,
) -> list[str]:
    """Base-model answers; ``rho_th`` > 0 hides that share of image tokens from every LM layer (bdhs.restrict)."""
    transform = None
    if rho_th > 0:
        settings, keys, token = BDHSSettings(rho_th=rho_th, seed=seed), [(i, 0) for i in ids], image_token_id(model)
        transform = lambda batch, rows: restrict(batch, rows, keys, settings, token)  # noqa: E731
    return generate(
        model,
        processor,
        images,
        prompts,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        do_sample=temperature > 0,
        temperature=temperature or 1.0,
        seed=seed,
        transform=transform,
    )


def _load_images(scenes: list[Scene], images_dir) -> dict:
    from PIL import Image

    out = {}
    for scene in scenes:
        path = Path(images_dir) / f"{scene.id}.png"
        try:
            out[scene.id] = Image.open(path).convert("RGB")
        except (OSError, ValueError):
            out[scene.id] = None
    return out


# ---------------------------------------------------------------------------------- VLFeedback analog


def vlfeedback_analog(
    scenes: list[Scene],
    images_dir,
    world: WorldSettings,
    model,
    processor,
    settings: VLFeedbackAnalogSettings,
    source: str = "vlfeedback_analog",
) -> tuple[list[dict], Manifest]:
    rng = random.Random(settings.seed)
    pool = [PoolModel(**p) for p in settings.pool]
    if settings.responses_per_prompt < 2 or settings.responses_per_prompt > len(pool):
        raise ValueError(f"responses_per_prompt must be between 2 and the pool size {len(pool)}")
    images = _load_images(scenes[: settings.max_scenes], images_dir)
    manifest = Manifest(source=source)
    items = []  # (id, scene, task, template_seed, sft_prompt, models drawn)
    for scene in scenes[: settings.max_scenes]:
        for k in range(settings.prompts_per_scene):
            task = draw_task(rng.choice(settings.families), scene, rng, settings.short_answer_prob)
            sft_prompt = rng.random() >= settings.novel_prompt_prob
            if not sft_prompt:
                task = novel_wording(task, rng)
            drawn = rng.sample(pool, settings.responses_per_prompt)
            items.append((f"{scene.id}-v{k}", scene, task, rng.randrange(2**31), sft_prompt, drawn))
    responses: dict[tuple[str, str], str] = {}
    for member in pool:  # one batched generation per base-model pool member, over the prompts that drew it
        todo = [it for it in items if member in it[5] and images[it[1].id] is not None]
        if member.kind == "base" and todo:
            answers = generate_answers(
                model,
                processor,
                [images[it[1].id] for it in todo],
                [it[2].prompt for it in todo],
                [it[0] for it in todo],
                temperature=member.temperature,
                rho_th=member.rho_th,
                max_new_tokens=settings.max_new_tokens,
                batch_size=settings.batch_size,
                seed=stable_seed(settings.seed, member.name, bits=31),
            )
            responses.update({(it[0], member.name): a for it, a in zip(todo, answers)})
        for it in todo if member.kind != "base" else []:
            if member.kind == "reference":
                responses[(it[0], member.name)] = lang.answer(it[2], it[1], random.Random(it[3])).text
            elif member.kind == "prior_corrupted":
                wrong = random.Random(stable_seed(settings.seed, it[0], member.name))
                responses[(it[0], member.name)] = lang.hallucinated_answer(it[2], it[1], world, wrong, it[3]).text
            else:
                raise ValueError(f"unknown pool model kind {member.kind!r}")
    rows, not_ranked = [], 0
    for pid, scene, task, template_seed, sft_prompt, drawn in items:
        manifest.rows_read += 1
        if images[scene.id] is None:
            manifest.drop("missing_image")
            continue
        ranked = []
        for member in drawn:
            text = responses.get((pid, member.name), "").strip()
            if not text:
                not_ranked += 1
                continue
            tie = random.Random(stable_seed(settings.seed, pid, member.name, "tie")).random()
            ranked.append((lang.assess(task.prompt, text, scene).rank_key, tie, member.name, text))
        if len(ranked) < 2:
            manifest.drop("too_few_rated_responses")
            continue
        ranked.sort()
        best, worst = ranked[0], ranked[-1]
        if best[0] == worst[0]:
            manifest.drop("tied_scores")
            continue
        if best[3] == worst[3]:
            manifest.drop("chosen_equals_rejected")
            continue
        rows.append(
            {
                "id": pid,
                "image": str(Path(images_dir) / f"{scene.id}.png"),
                "prompt": task.prompt,
                "chosen": best[3],
                "rejected": worst[3],
                "source": source,
                "meta": {
                    "scene": scene.id,
                    "family": task.family,
                    "task": asdict(task),
                    "template_seed": template_seed,
                    "sft_prompt": sft_prompt,
                    "chosen_model": best[2],
                    "rejected_model": worst[2],
                    "models": [m.name for m in drawn],
                },
            }
        )
    manifest.rows_kept = len(rows)
    manifest.extra = {
        "responses_not_ranked": not_ranked,
        "pool": settings.pool,
        "chosen_models": _counts(r["meta"]["chosen_model"] for r in rows),
        "rejected_models": _counts(r["meta"]["rejected_model"] for r in rows),
    }
    return rows, manifest


def _counts(values) -> dict:
    from collections import Counter

    return dict(Counter(values).most_common())


# ------------------------------------------------------------------------------------ RLHF-V analog


def _split_sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def _subjects(sentence: str) -> tuple[set, set]:
    claims = lang.parse(sentence)
    return {c.shape for c in claims if c.shape}, {c.kind for c in claims}


def correct_answer(prompt: str, response: str, truth: str, scene: Scene) -> str:
    """The annotator's correction: keep the sentences the judge finds no false claim in; replace a wrong sentence
    by the truth's sentence about the same object (else of the same claim kind: a yes/no, a count), or remove it
    when it is about an object that is not there."""
    truth_sentences = _split_sentences(truth)
    out = []
    for sentence in _split_sentences(response):
        if lang.assess(prompt, sentence, scene).false == 0:
            out.append(sentence)
            continue
        shapes, kinds = _subjects(sentence)
        present = shapes & scene.shapes
        same_object = [t for t in truth_sentences if _subjects(t)[0] & present and t not in out]
        same_kind = [t for t in truth_sentences if _subjects(t)[1] & (kinds & {"answer", "count"}) and t not in out]
        replacement = (same_object or same_kind or [None])[0]
        if replacement:
            out.append(replacement)
    return " ".join(out)


def rlhfv_analog(
    scenes: list[Scene],
    images_dir,
    model,
    processor,
    settings: RLHFVAnalogSettings,
    source: str = "rlhfv_analog",
    answerer=None,
) -> tuple[list[dict], Manifest]:
    """``answerer(items) -> answers`` replaces the base model as the model whose answers are corrected
    (items: (id, scene, task, template_seed)); by default the base model answers greedily."""
    rng = random.Random(settings.seed)
    images = _load_images(scenes[: settings.max_scenes], images_dir)
    others = [f for f in settings.families if f != "description"] or ["description"]
    items = []
    for scene in scenes[: settings.max_scenes]:
        for k in range(settings.prompts_per_scene):
            family = "description" if rng.random() < settings.description_share else rng.choice(others)
            items.append(
                (
                    f"{scene.id}-r{k}",
                    scene,
                    draw_task(family, scene, rng, settings.short_answer_prob),
                    rng.randrange(2**31),
                )
            )
    todo = [it for it in items if images[it[1].id] is not None]
    if answerer is not None:
        answers = answerer(todo)
    else:
        answers = generate_answers(
            model,
            processor,
            [images[it[1].id] for it in todo],
            [it[2].prompt for it in todo],
            [it[0] for it in todo],
            temperature=0.0,
            rho_th=0.0,
            max_new_tokens=settings.max_new_tokens,
            batch_size=settings.batch_size,
            seed=settings.seed,
        )
    answer_of = {it[0]: a.strip() for it, a in zip(todo, answers)}
    manifest = Manifest(source=source)
    rows, fallbacks = [], 0
    for pid, scene, task, template_seed in items:
        manifest.rows_read += 1
        if images[scene.id] is None:
            manifest.drop("missing_image")
            continue
        rejected = answer_of[pid]
        if not rejected:
            manifest.drop("empty_response")
            continue
        if lang.assess(task.prompt, rejected, scene).false == 0:
            manifest.drop("nothing_to_correct")
            continue
        truth = lang.answer(task, scene, random.Random(template_seed)).text
        chosen = correct_answer(task.prompt, rejected, truth, scene)
        if not chosen or lang.assess(task.prompt, chosen, scene).false > 0:
            chosen, fallbacks = truth, fallbacks + 1  # a correction the judge still faults: the annotator rewrites it
        if chosen == rejected:
            manifest.drop("chosen_equals_rejected")
            continue
        rows.append(
            {
                "id": pid,
                "image": str(Path(images_dir) / f"{scene.id}.png"),
                "prompt": task.prompt,
                "chosen": chosen,
                "rejected": rejected,
                "source": source,
                "meta": {
                    "scene": scene.id,
                    "family": task.family,
                    "task": asdict(task),
                    "template_seed": template_seed,
                    "rejected_model": "base",
                },
            }
        )
    manifest.rows_kept = len(rows)
    manifest.extra = {"rewritten_from_truth": fallbacks}
    return rows, manifest


# ------------------------------------------------------------------------------------------ entry


def build_analog_pairset(
    spec: dict, scenes_path, images_dir, model_dir, pairs_path, manifest_path, seed: int, world_config: dict | None
) -> Manifest:
    scenes = load_scenes(scenes_path, split="preference")
    model, processor = load_policy(model_dir)
    kind = spec["kind"]
    if kind == "vlfeedback_analog":
        known = VLFeedbackAnalogSettings.__dataclass_fields__
        settings = VLFeedbackAnalogSettings(**{k: v for k, v in spec.items() if k in known and k != "seed"}, seed=seed)
        world = WorldSettings.from_config({**(world_config or {}), "seed": seed})
        rows, manifest = vlfeedback_analog(scenes, images_dir, world, model, processor, settings)
    elif kind == "rlhfv_analog":
        known = RLHFVAnalogSettings.__dataclass_fields__
        settings = RLHFVAnalogSettings(**{k: v for k, v in spec.items() if k in known and k != "seed"}, seed=seed)
        rows, manifest = rlhfv_analog(scenes, images_dir, model, processor, settings)
    else:
        raise ValueError(f"not a model-made analog kind: {kind!r}")
    check_drop_rate(manifest, settings.max_drop_rate)
    write_pairs(rows, pairs_path)
    manifest.write(manifest_path)
    log.info(
        "%s: %d pairs of %d prompts (dropped %s) %s",
        kind,
        manifest.rows_kept,
        manifest.rows_read,
        dict(manifest.dropped),
        manifest.extra,
    )
    return manifest
