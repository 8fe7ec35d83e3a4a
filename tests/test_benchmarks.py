"""Benchmark scorers on hand-made predictions with known answers, and item construction."""

from __future__ import annotations

import pytest

from mmalign.evaluate.benchmarks import objhal, pope
from mmalign.synthetic import benchmarks as synthetic
from mmalign.synthetic.world import Scene, SceneObject


def item(i, subset, answer):
    return {
        "id": f"{subset}-{i}",
        "image": "x.png",
        "question": "is there a circle in the image?",
        "answer": answer,
        "subset": subset,
        "meta": {},
    }


@pytest.mark.parametrize(
    "text, parsed",
    [
        ("yes.", "yes"),
        ("Yes, there is a red circle.", "yes"),
        ("  no", "no"),
        ("No.", "no"),
        ("not sure", None),
        ("", None),
        ("there is a circle", None),
        ("yes no", "yes"),
        ("noisy", None),
    ],
)
def test_pope_parse_rule(text, parsed):
    assert pope.parse_answer(text) == parsed


@pytest.mark.parametrize(
    "answer", ["yes", "no, there is not", "Yes.", "  no no", "yesterday it was", "maybe", "", "3 circles", "no"]
)
def test_pope_generation_stops_only_once_the_parse_is_decided(answer):
    """Generation ends at the first prefix answer_complete accepts: the parse of that prefix is the parse of
    the whole answer, whatever follows."""
    for end in range(len(answer) + 1):
        if pope.answer_complete(answer[:end]):
            assert pope.parse_answer(answer[:end]) == pope.parse_answer(answer)
            assert pope.parse_answer(answer[:end]) == pope.parse_answer(answer[:end] + "s and more")
            break


def test_pope_metrics_on_known_predictions():
    truths = ["yes", "yes", "yes", "no", "no", "no", "no", "yes"]
    preds = ["yes", "yes", "no", "yes", "no", "no", "maybe", "i think so"]
    items = [item(i, "random", t) for i, t in enumerate(truths)]
    rows, judgments = pope.score(items, preds)
    m = {(r["subset"], r["metric"]): r["value"] for r in rows}
    # TP=2 (0,1), FN=2 (2, 7 unparsed), FP=1 (3), TN=2 (4,5), item 6 unparsed on a 'no'
    assert m["random", "accuracy"] == pytest.approx(4 / 8)
    assert m["random", "precision"] == pytest.approx(2 / 3)
    assert m["random", "recall"] == pytest.approx(2 / 4)
    assert m["random", "f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert m["random", "yes_ratio"] == pytest.approx(3 / 8)
    assert m["random", "unparsed"] == 2
    assert m["all", "accuracy"] == pytest.approx(0.5)
    assert [j["parsed"] for j in judgments][6] is None and judgments[6]["correct"] is False


def test_pope_all_is_the_mean_over_splits():
    items = [item(0, "random", "yes"), item(1, "adversarial", "no"), item(2, "adversarial", "yes")]
    rows, _ = pope.score(items, ["yes", "yes", "yes"])
    m = {(r["subset"], r["metric"]): r["value"] for r in rows}
    assert m["random", "accuracy"] == 1.0 and m["adversarial", "accuracy"] == 0.5
    assert m["all", "accuracy"] == pytest.approx(0.75)


def scene(i, *shapes):
    return Scene(f"s{i}", "eval", tuple(SceneObject(s, "red", "small", 0, k) for k, s in enumerate(shapes)))


def test_pope_items_are_balanced_and_adversarial_negatives_co_occur():
    train = [scene(i, "circle", "square") for i in range(20)] + [scene(100 + i, "star") for i in range(30)]
    evaluation = [scene(200, "circle"), scene(201, "star", "cross")]
    items = synthetic.ITEMS["pope"](evaluation, "imgs", seed=0, train_scenes=train)
    for split in pope.SPLITS:
        answers = [it["answer"] for it in items if it["subset"] == split]
        assert answers.count("yes") == answers.count("no") == 3
    adversarial = {
        it["meta"]["object"]
        for it in items
        if it["subset"] == "adversarial" and it["meta"]["scene"] == "s200" and it["answer"] == "no"
    }
    popular = {
        it["meta"]["object"]
        for it in items
        if it["subset"] == "popular" and it["meta"]["scene"] == "s200" and it["answer"] == "no"
    }
    assert adversarial == {"square"}  # co-occurs with circle in training scenes
    assert popular == {"star"}  # the most frequent absent shape
    assert all(it["question"].startswith("is there a") for it in items)


def test_objhal_chair_and_recall_on_known_descriptions():
    items = [
        {
            "id": "a",
            "image": "",
            "question": "",
            "answer": "",
            "subset": "all",
            "meta": {"objects": ["circle", "square"]},
        },
        {"id": "b", "image": "", "question": "", "answer": "", "subset": "all", "meta": {"objects": ["star"]}},
        {"id": "c", "image": "", "question": "", "answer": "", "subset": "all", "meta": {"objects": ["cross"]}},
    ]
    preds = [
        "a red circle is at the top. a blue square is at the center. a green triangle is at the left.",
        "there is a yellow star at the top. the star has the letter a on it.",
        "the image is empty.",
    ]
    rows, judgments = objhal.score(items, preds, reader=synthetic.READERS["objhal"])  # the world's shapes
    m = {r["metric"]: r["value"] for r in rows}
    assert m["chair_i"] == pytest.approx(1 / 5)  # mentions: circle square triangle star star
    assert m["chair_s"] == pytest.approx(1 / 3)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["no_mentions"] == 1
    assert judgments[0]["hallucinated"] == ["triangle"]


def test_objhal_items_carry_ground_truth():
    items = synthetic.ITEMS["objhal"]([scene(1, "square", "circle")], "imgs", 0, [])
    assert items[0]["meta"]["objects"] == ["circle", "square"]
    rows, _ = objhal.score(items, ["a red circle is at the top."], reader=synthetic.READERS["objhal"])
    assert rows[0]["metric"] == "recall" and rows[0]["value"] == 0.5


def test_fig10_share_of_non_similar_answers_is_cumulative():
    from mmalign.report.figures import non_similar_share

    stats = [
        {"similarities": [0.5], "eps_s": 0.97},  # dissimilar at once
        {"similarities": [0.99, 0.9], "eps_s": 0.97},  # dissimilar at iteration 2
        {"similarities": [0.99, 0.99, 0.98], "eps_s": 0.97},  # never (last, unguided answer accepted anyway)
        {"similarities": [0.99, 0.99, 0.5], "eps_s": 0.97},  # dissimilar at iteration 3
    ]
    assert non_similar_share(stats, 3) == [25.0, 50.0, 75.0]
