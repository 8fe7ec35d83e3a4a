"""The VLFeedback and RLHF-V analogs: pools ranked by the exact judge, judge-corrected base-model answers."""

from __future__ import annotations

import json
import random

import pytest

from mmalign.models import load_policy
from mmalign.synthetic import language as lang
from mmalign.synthetic.analogs import (
    NOVEL_PROMPTS,
    RLHFVAnalogSettings,
    VLFeedbackAnalogSettings,
    correct_answer,
    novel_wording,
    rlhfv_analog,
    vlfeedback_analog,
)
from mmalign.synthetic.tinyllava import world_vocabulary
from mmalign.synthetic.world import Scene, SceneObject, load_scenes


@pytest.fixture(scope="module")
def policy(tiny_model):
    return load_policy(tiny_model[0])


def scene_of(*objects):
    return Scene("s0", "preference", tuple(SceneObject(*o) for o in objects))


def test_novel_prompts_use_only_words_the_tiny_model_knows():
    vocab = set(world_vocabulary())
    texts = []
    for options in NOVEL_PROMPTS.values():
        for group in options.values() if isinstance(options, dict) else [options]:
            texts += [t.format(shape="circle", pos="top left") for t in group]
    words = {w for t in texts for w in t.replace("?", " ?").replace(".", " .").split()}
    assert words <= vocab, words - vocab
    task = lang.existence_task("star", random.Random(0), short=True)
    novel = novel_wording(task, random.Random(1))
    assert novel.prompt != task.prompt and novel.prompt.endswith(lang.SHORT_SUFFIX) and "star" in novel.prompt


def test_correction_fixes_wrong_sentences_and_removes_absent_objects():
    scene = scene_of(("circle", "red", "large", 0, 0), ("square", "blue", "small", 1, 1))
    truth = "there are two objects in the image. a large red circle is at the top left. a small blue square is at the center."
    wrong = (
        "there are three objects in the image. a large red circle is at the top left. "
        "a small green square is at the center. a large red star is at the bottom right."
    )
    fixed = correct_answer("describe the image in detail.", wrong, truth, scene)
    assert fixed == truth
    assert lang.assess("describe the image in detail.", fixed, scene).false == 0
    prompt = "is there a star in the image? answer with one word."
    assert correct_answer(prompt, "yes.", "no.", scene) == "no."


def test_vlfeedback_analog_ranks_a_pool_with_the_exact_judge(small_world, policy, tmp_path):
    settings, scenes_path, images = small_world
    scenes = load_scenes(scenes_path, "preference")
    rows, manifest = vlfeedback_analog(
        scenes, images, settings, *policy, VLFeedbackAnalogSettings(seed=0, prompts_per_scene=2, max_new_tokens=24)
    )
    assert manifest.rows_read == 2 * len(scenes) and manifest.rows_kept == len(rows) > 0
    assert manifest.rows_read == manifest.rows_kept + sum(manifest.dropped.values())
    by_id = {s.id: s for s in scenes}
    for row in rows:
        meta = row["meta"]
        scene = by_id[meta["scene"]]
        best = lang.assess(row["prompt"], row["chosen"], scene).rank_key
        worst = lang.assess(row["prompt"], row["rejected"], scene).rank_key
        assert best < worst and {meta["chosen_model"], meta["rejected_model"]} <= set(meta["models"])
        assert len(meta["models"]) == 4
    models = {r["meta"]["chosen_model"] for r in rows} | {r["meta"]["rejected_model"] for r in rows}
    assert {"reference", "prior"} <= models and any(m.startswith("base") for m in models)
    assert {r["meta"]["sft_prompt"] for r in rows} == {True, False}
    again, _ = vlfeedback_analog(
        scenes, images, settings, *policy, VLFeedbackAnalogSettings(seed=0, prompts_per_scene=2, max_new_tokens=24)
    )
    assert json.dumps(again, sort_keys=True) == json.dumps(rows, sort_keys=True)  # seeded end to end


def check_corrected(rows, manifest, scenes):
    assert manifest.rows_read == manifest.rows_kept + sum(manifest.dropped.values())
    by_id = {s.id: s for s in scenes}
    for row in rows:
        scene = by_id[row["meta"]["scene"]]
        assert lang.assess(row["prompt"], row["chosen"], scene).false == 0
        assert lang.assess(row["prompt"], row["rejected"], scene).false > 0


def test_rlhfv_analog_with_the_base_model(small_world, policy):
    settings, scenes_path, images = small_world
    scenes = load_scenes(scenes_path, "preference")
    rows, manifest = rlhfv_analog(scenes, images, *policy, RLHFVAnalogSettings(seed=0, max_new_tokens=24))
    assert manifest.rows_read == 3 * len(scenes)
    check_corrected(rows, manifest, scenes)  # the barely trained test model often makes no claim at all


def test_rlhfv_analog_corrects_a_hallucinating_answerer(small_world):
    """The answers to correct come from a model that hallucinates along the priors half of the time."""
    settings, scenes_path, images = small_world
    scenes = load_scenes(scenes_path, "preference")

    def answerer(items):
        rng = random.Random(0)
        return [
            lang.hallucinated_answer(task, scene, settings, rng, seed).text
            if rng.random() < 0.5
            else lang.answer(task, scene, random.Random(seed)).text
            for _, scene, task, seed in items
        ]

    rows, manifest = rlhfv_analog(scenes, images, None, None, RLHFVAnalogSettings(seed=0), answerer=answerer)
    check_corrected(rows, manifest, scenes)
    assert manifest.dropped["nothing_to_correct"] > 0 and len(rows) > 0.3 * manifest.rows_read
    kept_wording = sum(r["chosen"].split(".")[0] == r["rejected"].split(".")[0] for r in rows)
    assert kept_wording > 0  # sentence-level corrections keep the answer's correct sentences
