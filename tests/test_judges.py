"""Judges: parse rules on known texts, the exact judge on known scenes, the cache, an OpenAI-compatible server
on loopback (good, flaky, garbage and dead), and the local Hugging Face backend on the tiny LLaVA."""

from __future__ import annotations

import json

import pytest

from chat_server import chat_server, openai_spec  # noqa: F401 (chat_server: a fixture)
from mmalign.judges import (
    FAILED,
    OK,
    TIE,
    UNPARSED,
    JudgmentCache,
    PairRequest,
    RateRequest,
    Rendered,
    make_judge,
    prompts,
    summarize,
)
from mmalign.synthetic.world import Scene, SceneObject

# --------------------------------------------------------------------------------------------- parse rules


@pytest.mark.parametrize(
    "text, preferred",
    [
        ("Response 1 is better. It names the red circle.", 0),
        ("**Response 2 is better** because it does not invent a square.", 1),
        ("After comparing, the better response is Response 2.", 1),
        ("response 1 was slightly better", 0),
        ("Both are fine.", None),
        ("Response 1 is better in tone, but Response 2 is better overall.", None),  # contradicting: not guessed
        ("", None),
    ],
)
def test_pairwise_parse_rule(text, preferred):
    assert prompts.parse_pairwise(text)[0] == preferred


@pytest.mark.parametrize(
    "text, score",
    [
        ("The response is accurate.\nRating: 5", 5.0),
        ("rating: 2 ... on reflection\nRating: 4", 4.0),  # the last rating counts
        ("Rating: 7", None),
        ("Rating: 3.5", None),
        ("I would give it a six.", None),
    ],
)
def test_mmhal_parse_rule(text, score):
    assert prompts.parse_mmhal(text)[0] == score


@pytest.mark.parametrize(
    "text, scores",
    [
        ("8 6\nAssistant 1 is more detailed.", (8.0, 6.0)),
        ("\n9, 7.5\nbecause", (9.0, 7.5)),
        ("Assistant 1: 8, Assistant 2: 6", None),
        ("8 11\n", None),
        ("", None),
    ],
)
def test_llavaw_parse_rule(text, scores):
    assert prompts.parse_llavaw(text)[0] == scores


@pytest.mark.parametrize(
    "text, score",
    [("0.6", 0.6), (" 1.0\n", 1.0), ("0", 0.0), ("1", 1.0), ("2.5", None), ("correct", None), ("0.75 maybe", 0.75)],
)
def test_mmvet_parse_rule(text, score):
    assert prompts.parse_mmvet(text)[0] == score


def test_rubric_prompts_carry_what_the_judge_sees():
    _, text_only = prompts.render_rubric(
        "mmhal", "what colour is the circle?", "blue.", "the circle is red.", ("circle",)
    )
    _, seeing = prompts.render_rubric("mmhal", "q", "r", "a", (), with_image=True)
    assert "Image contents: circle" in text_only and "cannot see the image" in text_only
    assert "shown the image" in seeing and "Rating: <0-6>" in seeing
    system, user = prompts.render_rubric("llavaw", "q?", "resp", "ref", context="a red circle")
    assert system and user.index("ref") < user.index("resp") and "a red circle" in user
    with pytest.raises(ValueError, match="unknown rubric"):
        prompts.render_rubric("vqa", "q", "r", "a")


# --------------------------------------------------------------------------------------------- exact judge

SCENE = Scene(
    "s0", "eval", (SceneObject("circle", "blue", "large", 0, 0, "k"), SceneObject("square", "blue", "small", 1, 1))
).to_dict()
RED_CIRCLE = (
    "there are two objects in the image. a large blue circle is at the top left. a small blue square is at the center."
)


def pair(i, a, b, scene=SCENE, prompt="describe the image in detail."):
    return PairRequest(f"p{i}", prompt, (a, b), scene=scene)


def test_exact_pairwise_prefers_the_higher_net_score_and_counts_ties_and_failures():
    judge = make_judge({"backend": "exact"})
    verdicts = judge.compare(
        [
            pair(0, RED_CIRCLE, RED_CIRCLE.replace("square", "triangle")),  # b invents a triangle
            pair(1, "a blue circle is at the top left.", RED_CIRCLE),  # same false (0), b has more true claims
            pair(2, "yes.", "no.", prompt="is there a square in the image?"),
            pair(3, "a blue circle.", "a blue square."),  # both true, one claim each
            pair(4, "a circle.", "a square.", scene=None),  # nothing to check against
        ]
    )
    as_object = judge.compare(
        [pair(5, RED_CIRCLE, RED_CIRCLE.replace("square", "triangle"), scene=Scene.from_dict(SCENE))]
    )
    assert as_object[0].preferred == 0 and as_object[0].prompt_hash == verdicts[0].prompt_hash  # same content
    assert [v.preferred for v in verdicts] == [0, 1, 0, None, None]
    assert [v.status for v in verdicts] == [OK, OK, OK, TIE, FAILED]
    assert "no scene" in verdicts[4].reason and verdicts[4].raw is None
    assert summarize(verdicts) == {
        "judged": 4.0,
        "ties": 1.0,
        "judge_unparsed": 0.0,
        "judge_failed": 1.0,
        "judge_cached": 0.0,
    }
    assert all(v.judge_id == "exact-world" and len(v.prompt_hash) == 64 for v in verdicts)


def test_exact_pairwise_does_not_let_silence_beat_an_informative_answer():
    # Silence (empty, punctuation, a lone article) loses to any answer that says something, even a wrong one:
    # ranking by false claims first made Online-DPO collapse to empty answers. Among answers that say
    # something, the net score (true - 2 x false claims) decides, then fewer false claims.
    judge = make_judge({"backend": "exact"})
    one_error = RED_CIRCLE.replace("small blue square", "small red square")  # 2 true, 1 false: net 0
    verdicts = judge.compare(
        [
            pair(0, "", one_error),
            pair(1, ".", RED_CIRCLE),
            pair(2, "a red circle.", "the"),
            pair(3, "the", "."),
            pair(4, "a large blue circle is at the top left.", one_error),  # net 1 vs 0
            pair(5, one_error, "a red circle. a red square."),  # net 0 vs -4
        ]
    )
    assert [v.preferred for v in verdicts] == [1, 1, 0, None, 0, 0]
    assert [v.reason for v in verdicts[:2]] == ["the other response says nothing"] * 2
    assert "net score" in verdicts[4].reason


def test_exact_pairwise_with_a_reference_rewards_answering_the_question():
    # Restating the question's object ("the circle.") is a true claim but no answer: with the pair's reference
    # answer the judge also counts the reference claims a response states, so the real answer wins.
    judge = make_judge({"backend": "exact"})
    ask = "what colour is the circle?"
    with_reference = judge.compare(
        [PairRequest("r0", ask, ("the circle.", "the circle is blue."), scene=SCENE, reference="the circle is blue.")]
    )
    without = judge.compare([PairRequest("r1", ask, ("the circle.", "the circle is blue."), scene=SCENE)])
    assert with_reference[0].preferred == 1 and without[0].preferred is None  # a tie without the reference
    assert with_reference[0].prompt_hash != without[0].prompt_hash  # the reference is part of what the judge saw


def test_exact_error_rate_flips_that_share_of_verdicts_reproducibly():
    requests = [
        pair(i, RED_CIRCLE, RED_CIRCLE.replace("square", "star") + " " * (i % 50) + f" {'.' * (i // 50)}")
        for i in range(400)
    ]
    truth = [v.preferred for v in make_judge({"backend": "exact"}).compare(requests)]
    weak = make_judge({"backend": "exact", "error_rate": 0.2, "seed": 1})
    flipped = [v.preferred for v in weak.compare(requests)]
    share = sum(a != b for a, b in zip(truth, flipped)) / len(truth)
    assert 0.13 < share < 0.27
    assert flipped == [v.preferred for v in weak.compare(requests)]  # same seed, same flips
    assert weak.judge_id == "exact-world-err0.2-seed1"


def test_exact_mmhal_text_only_misses_what_the_reference_does_not_cover_and_the_image_judge_catches_it():
    reference = "the circle is blue."
    # right about the circle, wrong about the square's size: the reference says nothing about the square
    response = "the circle is blue. the square is large."
    text_only = RateRequest("a", "mmhal", "what colour is the circle?", response, reference, tags=("circle", "square"))
    with_scene = RateRequest("a", "mmhal", "what colour is the circle?", response, reference, scene=SCENE)
    invented = RateRequest(
        "b",
        "mmhal",
        "what colour is the circle?",
        "the circle is blue. a red star is at the top.",
        reference,
        tags=("circle", "square"),
    )
    wrong = RateRequest(
        "c", "mmhal", "what colour is the circle?", "the circle is red.", reference, tags=("circle", "square")
    )
    silent = RateRequest("d", "mmhal", "what colour is the circle?", "i am not sure.", reference, tags=("circle",))
    ratings = make_judge({"backend": "exact"}).rate([text_only, with_scene, invented, wrong, silent])
    assert [r.score for r in ratings] == [5.0, 2.0, 2.0, 0.0, 3.0]  # the unjudged claim adds nothing
    assert all(r.status == OK for r in ratings)


def test_exact_llavaw_and_mmvet_scores():
    judge = make_judge({"backend": "exact"})
    question = "describe the image in detail."
    reference = RED_CIRCLE
    half = "there are two objects in the image. a large blue circle is at the top left."
    ratings = judge.rate(
        [
            RateRequest("full", "llavaw", question, reference, reference, scene=SCENE),
            RateRequest("half", "llavaw", question, half, reference, scene=SCENE),
            RateRequest(
                "mm", "mmvet", "what colour is the circle?", "the circle is blue.", "the circle is blue.", scene=SCENE
            ),
            RateRequest(
                "mm0", "mmvet", "what colour is the circle?", "the circle is red.", "the circle is blue.", scene=SCENE
            ),
            RateRequest("mmh", "mmvet", question, half + " a star is at the right.", reference, scene=SCENE),
        ]
    )
    assert ratings[0].score == 10.0 and ratings[0].details["reference_score"] == 10.0
    assert ratings[1].score == pytest.approx(1 + 9 * 2 / 3)  # 2 of 3 reference claims, no false claim
    assert [r.score for r in ratings[2:]] == [1.0, 0.0, round(2 / 3 * 2 / 3, 1)]


# -------------------------------------------------------------------------------------------------- cache


def test_cache_serves_a_rerun_and_keeps_the_raw_text(tmp_path):
    cache_path = tmp_path / "judgments.sqlite"
    requests = [pair(0, RED_CIRCLE, "a red star."), pair(1, "a circle.", "a square.", scene=None)]
    first = make_judge({"backend": "exact"}, cache_path).compare(requests)
    second = make_judge({"backend": "exact"}, cache_path).compare(requests)
    assert [v.cached for v in first] == [False, False]
    assert [v.cached for v in second] == [True, False]  # failures are not cached: a rerun retries them
    assert second[0].raw == first[0].raw and second[0].preferred == first[0].preferred == 0
    assert len(JudgmentCache(cache_path)) == 1
    other = make_judge({"backend": "exact", "error_rate": 0.5}, cache_path).compare(requests[:1])
    assert not other[0].cached  # another judge id never reuses these


# ------------------------------------------------------------------------------- OpenAI-compatible server


def test_openai_judge_compares_and_rates_through_a_loopback_server(chat_server, tmp_path, small_world):
    _, _, images = small_world
    image = sorted(images.iterdir())[0]
    server = chat_server(
        [
            "Response 2 is better: Response 1 invents a square.",
            "Looks right.\nRating: 5",
            "7 9\nAssistant 2 is more precise.",
        ]
    )
    judge = make_judge(openai_spec(), tmp_path / "cache.sqlite")
    verdicts = judge.compare([PairRequest("p", "describe the image.", ("a square.", "a circle."), image=str(image))])
    ratings = judge.rate(
        [
            RateRequest("m", "mmhal", "q?", "resp", "ref", tags=("circle",)),
            RateRequest("w", "llavaw", "q?", "resp", "ref", context="a circle"),
        ]
    )
    assert verdicts[0].preferred == 1 and verdicts[0].status == OK and verdicts[0].judge_id == "openai:judge-model-7b"
    assert ratings[0].score == 5.0 and ratings[1].score == 9.0 and ratings[1].details == {"reference_score": 7.0}
    # what reached the server: the model, the image as a data URL, the key only in the auth header
    first, third = server.requests[0], server.requests[2]
    assert first["model"] == "judge-model-7b" and first["temperature"] == 0.0
    assert first["messages"][0]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert "Response 1: a square." in first["messages"][0]["content"][1]["text"]
    assert third["messages"][0]["role"] == "system" and isinstance(server.requests[1]["messages"][0]["content"], str)
    assert server.headers[0]["authorization"] == "Bearer sk-secret-test-key"
    records = json.dumps([v.to_record() for v in verdicts + ratings])
    assert "sk-secret" not in records
    # a rerun is served from the cache: the server sees no new request
    again = make_judge(openai_spec(), tmp_path / "cache.sqlite").compare(
        [PairRequest("p", "describe the image.", ("a square.", "a circle."), image=str(image))]
    )
    assert again[0].cached and again[0].preferred == 1 and len(server.requests) == 3


def test_openai_judge_retries_transient_errors_with_backoff(chat_server):
    server = chat_server([500, 503, "Response 1 is better."])
    judge = make_judge(openai_spec())
    verdicts = judge.compare([pair(0, "a", "b", scene=None)])
    assert verdicts[0].preferred == 0 and judge.retries == 2 and len(server.requests) == 3


def test_failed_and_garbage_judgments_are_counted_never_scored(chat_server, tmp_path):
    server = chat_server([500])  # the server is down for good
    judge = make_judge(openai_spec(), tmp_path / "cache.sqlite")
    down = judge.rate([RateRequest("m", "mmhal", "q?", "resp", "ref")])
    assert (
        down[0].score is None and down[0].status == FAILED and "InternalServerError after 3 attempts" in down[0].reason
    )
    assert len(server.requests) == 3  # bounded: one call + max_retries
    server.replies = ["I think both answers have merit."]
    garbage = judge.rate([RateRequest("m", "mmhal", "q?", "resp", "ref")])
    verdicts = judge.compare([pair(0, "a", "b", scene=None)])
    assert garbage[0].score is None and garbage[0].status == UNPARSED and garbage[0].raw.startswith("I think")
    assert verdicts[0].preferred is None and verdicts[0].status == UNPARSED
    assert summarize(down + garbage) == {
        "judged": 0.0,
        "ties": 0.0,
        "judge_unparsed": 1.0,
        "judge_failed": 1.0,
        "judge_cached": 0.0,
    }
    server.replies = [400]  # a client error is not retried
    n = len(server.requests)
    bad = make_judge(openai_spec()).compare([pair(1, "c", "d", scene=None)])
    assert bad[0].status == FAILED and "HTTP 400" in bad[0].reason and len(server.requests) == n + 1


def test_openai_judge_needs_its_model_from_the_environment(monkeypatch):
    monkeypatch.delenv("NO_SUCH_JUDGE_MODEL", raising=False)
    with pytest.raises(ValueError, match="NO_SUCH_JUDGE_MODEL"):
        make_judge({"backend": "openai", "model_env": "NO_SUCH_JUDGE_MODEL"})
    with pytest.raises(ValueError, match="unknown setting"):
        make_judge({"backend": "exact", "eror_rate": 0.1})


# ------------------------------------------------------------------------------------------- local HF VLM


def test_hf_judge_generates_with_the_tiny_llava_and_counts_prompts_that_do_not_fit(tiny_model, small_world, tmp_path):
    model_dir, _ = tiny_model
    _, _, images = small_world
    image = str(sorted(images.iterdir())[0])
    judge = make_judge({"backend": "hf", "max_new_tokens": 8}, tmp_path / "cache.sqlite", model_dir=model_dir)
    assert judge.judge_id.startswith("hf:tinyllava@")
    raw = judge.complete([Rendered("is there a circle in the image?", image), Rendered("describe the image.")])
    assert all(isinstance(r, str) for r in raw)  # with an image and text-only, both generated
    # the tiny model's 96-position context cannot hold the annotator prompt: a counted failure, not a verdict
    verdicts = judge.compare(
        [PairRequest("p", "describe the image.", ("a red circle.", "a blue square."), image=image)]
    )
    assert verdicts[0].status == FAILED and "prompt too long" in verdicts[0].reason and verdicts[0].preferred is None
