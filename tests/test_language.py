"""The world's language: every template parses back to the claims it was generated from."""

from __future__ import annotations

import random

import pytest

from mmalign.synthetic import language as lang
from mmalign.synthetic.world import Scene, SceneObject, WorldSettings, generate_scenes

SETTINGS = WorldSettings(seed=7, split_sizes={"sft": 300, "preference": 0, "eval": 1})
SCENES = generate_scenes(SETTINGS)


@pytest.mark.parametrize("family", lang.FAMILIES)
def test_parser_round_trips_every_family(family):
    rng = random.Random(0)
    for scene in SCENES:
        for short in (False, True):
            task = (
                lang.make_task(family, scene, rng, short=short)
                if family == "existence"
                else lang.make_task(family, scene, rng)
            )
            answer = lang.answer(task, scene, rng)
            assert lang.parse(answer.text) == answer.claims, answer.text
            assert all(lang.check_claim(c, scene) in (True, None) for c in answer.claims)


def test_every_object_and_count_template_is_exercised():
    scene = SCENES[0]
    seen_object, seen_count = set(), set()
    for seed in range(200):
        rng = random.Random(seed)
        text = lang.answer(lang.Task("description", "describe the image in detail."), scene, rng).text
        for template in lang.OBJECT_TEMPLATES:
            if template.split("{")[0] and template.split("{")[0] in text:
                seen_object.add(template)
        seen_count.update(t for t in lang.COUNT_TEMPLATES if t.split("{")[0] in text)
    assert len(seen_count) == len(lang.COUNT_TEMPLATES)
    assert len(seen_object) >= 2


def test_hallucinated_answer_keeps_wording_and_states_a_false_fact():
    rng = random.Random(1)
    changed = 0
    for scene in SCENES[:150]:
        for family in lang.FAMILIES:
            task = lang.make_task(family, scene, rng)
            seed = rng.randrange(10**6)
            truth = lang.answer(task, scene, random.Random(seed))
            wrong = lang.hallucinated_answer(task, scene, SETTINGS, rng, seed)
            if wrong.text == truth.text:
                continue
            changed += 1
            assert any(lang.check_claim(c, scene) is False for c in lang.parse(wrong.text)) or (
                family == "existence" and lang.parse(wrong.text)[0].answer != lang.parse(truth.text)[0].answer
            ), (truth.text, wrong.text)
    assert changed > 0.95 * 150 * len(lang.FAMILIES)


def test_description_hallucinations_follow_the_priors():
    """Injected objects are partners of present shapes, in their usual colour."""
    rng = random.Random(2)
    added = 0
    for scene in SCENES:
        task = lang.Task("description", "describe the image in detail.")
        wrong = lang.corrupt_scene(task, scene, SETTINGS, rng)
        for obj in set(wrong.objects) - set(scene.objects):
            if obj.shape not in scene.shapes:
                added += 1
                assert obj.shape in {SETTINGS.partners[s] for s in scene.shapes}
    assert added > 0


def test_parse_handles_free_text():
    claims = lang.parse("Yes, there is a RED circle at the top left. No square. I like it")
    assert lang.Claim("answer", answer="yes") in claims
    assert lang.Claim("object", "circle", "red", None, "top left") in claims
    assert lang.Claim("absent", "square") in claims


def test_check_claim_against_scene():
    scene = Scene("x", "eval", (SceneObject("circle", "red", "small", 0, 0, "a"),))
    assert lang.check_claim(lang.Claim("object", "circle", "red"), scene) is True
    assert lang.check_claim(lang.Claim("object", "circle", "blue"), scene) is False
    assert lang.check_claim(lang.Claim("object", "square"), scene) is False
    assert lang.check_claim(lang.Claim("absent", "square"), scene) is True
    assert lang.check_claim(lang.Claim("count", count=1), scene) is True
    assert lang.check_claim(lang.Claim("letter", "circle", letter="a"), scene) is True
    assert lang.mentioned_shapes("a red circle is at the top left. a blue square is at the center.") == [
        "circle",
        "square",
    ]


def test_assess_counts_true_false_and_unjudged_claims():
    scene = Scene("x", "eval", (SceneObject("circle", "red", "small", 0, 0, "a"),))
    yes = lang.assess("is there a circle in the image? answer with one word.", "yes.", scene)
    no = lang.assess("is there a circle in the image?", "no, there is no circle.", scene)
    assert (yes.true, yes.false) == (1, 0)
    assert (no.true, no.false) == (0, 2)  # the wrong "no" and the false denial
    described = lang.assess("describe the image.", "there is a red circle. there is a blue square. hello", scene)
    assert (described.true, described.false, described.unjudged) == (1, 1, 0)
    assert lang.assess("what is this?", "yes.", scene).unjudged == 1  # a yes/no to no existence question
    ranked = sorted([no, described, yes, lang.assess("describe the image.", "the", scene)], key=lambda a: a.rank_key)
    assert ranked[:3] == [yes, described, no] and ranked[3].silent  # silence last
