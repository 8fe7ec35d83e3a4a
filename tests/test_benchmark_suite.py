"""The paper's benchmark suite (issue 6): scorers on hand-made predictions with known answers, synthetic items
scored with the exact judge, judge failures counted beside the metric, real-format loaders on small local
fixtures (bad records skipped and counted), and one evaluation end to end on the tiny LLaVA."""

from __future__ import annotations

import io
import json
import math
import random
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from chat_server import chat_server, openai_spec  # noqa: F401 (chat_server: a fixture)
from mmalign.evaluate.benchmarks import gqa, llavaw, mmhal, mmhalv, mmvet, vqat
from mmalign.evaluate.run import evaluate, evaluate_suite, score, usable_items
from mmalign.evaluate.snapshots import benchmark_to_items
from mmalign.judges import make_judge
from mmalign.schema import read_jsonl
from mmalign.synthetic import benchmarks as synthetic
from mmalign.synthetic.language import Task, hallucinated_answer
from mmalign.synthetic.world import Scene, WorldSettings, load_scenes


def metrics(rows, subset="all"):
    return {r["metric"]: r["value"] for r in rows if r["subset"] == subset}


# ---------------------------------------------------------------------------------- rule-scored benchmarks


@pytest.mark.parametrize(
    "text, normalized",
    [
        ("Two", "2"),
        ("the Coca-Cola.", "coca cola"),
        ("A dog", "dog"),
        ("yes!", "yes"),
        ("  STOP \n", "stop"),
        ("1,000", "1000"),
        ("dont", "don't"),
        ("3.5", "3.5"),
        ("", ""),
    ],
)
def test_vqa_normalization(text, normalized):
    assert vqat.normalize_vqa(text) == normalized


def test_vqa_accuracy_on_known_predictions():
    humans = ["stop"] * 2 + ["stop sign"] * 8
    assert vqat.vqa_accuracy("stop sign", humans) == 1.0
    assert vqat.vqa_accuracy("stop", humans) == pytest.approx((8 * 2 / 3 + 2 * 1 / 3) / 10)
    assert vqat.vqa_accuracy("go", humans) == 0.0
    items = [
        {
            "id": str(i),
            "image": "",
            "question": "what does it say?",
            "answer": "stop sign",
            "subset": "all",
            "meta": {"answers": humans},
        }
        for i in range(4)
    ]
    rows, judgments = vqat.score(items, ["Stop sign.", "STOP", "go", "   "])
    m = metrics(rows)
    assert m["accuracy"] == pytest.approx((1 + 0.6 + 0 + 0) / 4)
    assert m["unparsed"] == 1 and judgments[3]["parsed"] is None and judgments[3]["accuracy"] == 0


def test_gqa_exact_match_after_normalization():
    items = [
        {"id": str(i), "image": "", "question": "q", "answer": a, "subset": "all", "meta": {}}
        for i, a in enumerate(["Yes", "left", "white", "table"])
    ]
    rows, judgments = gqa.score(items, ["yes.", " Left ", "the white one", ""])
    m = metrics(rows)
    assert m["accuracy"] == 0.5 and m["unparsed"] == 1
    assert [j["correct"] for j in judgments] == [True, True, False, False]


def test_synthetic_parse_rules_read_the_world_language():
    gqa_reader, vqat_reader = synthetic.READERS["gqa"], synthetic.READERS["vqat"]
    item = {"meta": {"scene": {}}, "question": "what colour is the shape at the top left?"}
    assert gqa_reader.answer("the circle at the top left is red.", item) == "red"
    assert gqa_reader.answer("a blue square is at the center. a red circle is at the top left.", item) == "red"
    assert gqa_reader.answer("i do not know.", item) is None
    shape_item = {"meta": {"scene": {}}, "question": "what shape is at the center?"}
    assert gqa_reader.answer("a green triangle is at the center.", shape_item) == "triangle"
    assert vqat_reader.answer("the star has the letter k on it.", item) == "k"
    assert vqat_reader.answer("there is no letter on the star.", item) == "none"
    assert vqat_reader.answer("k", item) is None  # the world's language states a letter in a sentence


# ------------------------------------------------------------------------------- synthetic items, exact judge


@pytest.fixture(scope="module")
def eval_scenes(small_world):
    settings, scenes_path, images = small_world
    return settings, load_scenes(scenes_path, "eval"), load_scenes(scenes_path, "sft"), images


@pytest.mark.parametrize("kind", ["mmhal", "mmhalv", "llavaw", "vqat", "gqa", "mmvet"])
def test_ground_truth_answers_score_perfectly_and_nonsense_scores_as_wrong_or_unparsed(kind, eval_scenes):
    _, scenes, train, images = eval_scenes
    items = synthetic.ITEMS[kind](scenes, images, 0, train)
    assert items and all(it["answer"] and "scene" in it["meta"] for it in items)
    judge = make_judge({"backend": "exact"})

    def scored(predictions):  # as the evaluation scores them: with the judge, and the world's answer reader
        rows, judgments = score(kind, items, predictions, judge, synthetic)
        assert len(judgments) == len(items)
        return metrics(rows)

    truth, nonsense = scored([it["answer"] for it in items]), scored(["i do not know."] * len(items))
    headline = {
        "mmhal": "score",
        "mmhalv": "score",
        "llavaw": "score",
        "vqat": "accuracy",
        "gqa": "accuracy",
        "mmvet": "score",
    }[kind]
    best = {"mmhal": 5.0, "mmhalv": 5.0, "llavaw": 100.0, "vqat": 1.0, "gqa": 1.0, "mmvet": 100.0}[kind]
    assert truth[headline] == pytest.approx(best)
    assert nonsense[headline] < truth[headline]
    if kind in ("vqat", "gqa"):
        assert nonsense["unparsed"] == len(items) and truth["unparsed"] == 0
    else:
        assert truth["judged"] == len(items) and truth["judge_failed"] == 0


def test_item_counts_stay_small(eval_scenes):
    """Every variant is evaluated on every benchmark: each synthetic benchmark stays near 100-150 items."""
    settings = WorldSettings(seed=5, split_sizes={"sft": 20, "preference": 0, "eval": 300})
    from mmalign.synthetic.world import generate_scenes

    scenes = [s for s in generate_scenes(settings) if s.split == "eval"]
    for kind in ("mmhal", "mmhalv", "llavaw", "vqat", "gqa", "mmvet"):
        assert 90 <= len(synthetic.ITEMS[kind](scenes, "imgs", 0, [])) <= 150, kind


def test_items_scale_multiplies_the_items_without_repeating_a_question_on_a_scene():
    """items_scale: k times the items of each family (and the same items as before at 1); a scene met again is
    asked another family's question, and gqa / vqat (one family) stop at one item per eval scene."""
    settings = WorldSettings(seed=5, split_sizes={"sft": 20, "preference": 0, "eval": 300})
    from mmalign.synthetic.world import generate_scenes

    scenes = [s for s in generate_scenes(settings) if s.split == "eval"]
    for kind in synthetic.SCALABLE:
        default, scaled = (synthetic.ITEMS[kind](scenes, "imgs", 0, [], scale=k) for k in (1, 3))
        assert default == synthetic.ITEMS[kind](scenes, "imgs", 0, [])
        assert len(scaled) == min(3 * len(default), len(scenes) if kind in ("gqa", "vqat") else math.inf), kind
        assert len({it["id"] for it in scaled}) == len(scaled), kind
        asked = [(it["meta"]["scene"]["id"], it["question"]) for it in scaled]
        assert len(set(asked)) == len(asked), kind
        if kind not in ("gqa", "vqat"):  # every family (and so every subset) three times over
            families = [it["subset"] for it in default]
            assert sorted(it["subset"] for it in scaled) == sorted(families * 3), kind


def test_items_scale_of_a_benchmark_with_fixed_items_fails_naming_the_key(tmp_path):
    from mmalign.config import ConfigError, apply_defaults, check_references

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config/config.yaml").read_text())
    apply_defaults(config)
    config["benchmarks"]["pope"]["items_scale"] = 2
    config["benchmarks"]["gqa"]["items_scale"] = 2  # scalable: no complaint
    with pytest.raises(ConfigError) as err:
        check_references(config)
    assert "'benchmarks.pope.items_scale': pope has a fixed number of items" in str(err.value)
    assert "benchmarks.gqa" not in str(err.value)


def test_the_image_seeing_judge_catches_hallucinations_the_text_only_judge_misses(eval_scenes):
    """MMHAL vs MMHALv: prior-driven hallucinations outside the reference answer are seen only with the scene."""
    settings, scenes, train, images = eval_scenes
    items = synthetic.ITEMS["mmhal"](scenes, images, 0, train)
    judge = make_judge({"backend": "exact"})
    # the reference answer plus one more sentence about a prior-driven object that is not there
    predictions = []
    for item in items:
        present = set(item["meta"]["objects"])
        absent = (
            next(settings.partners[s] for s in sorted(present) if settings.partners[s] not in present)
            if any(settings.partners[s] not in present for s in present)
            else None
        )
        extra = f" a small {settings.usual_colours[absent]} {absent} is at the bottom." if absent else ""
        predictions.append(item["answer"] + extra)
    text_only = metrics(mmhal.score(items, predictions, judge)[0])
    seeing = metrics(mmhalv.score(items, predictions, judge)[0])
    assert seeing["hallucination_rate"] > 0.5
    assert text_only["hallucination_rate"] == seeing["hallucination_rate"]  # an absent object: both see it
    # a wrong attribute of a present object the reference does not mention: only the scene shows it
    wrong_colour = []
    for item in items:
        scene_objects = item["meta"]["scene"]["objects"]
        obj = scene_objects[-1]
        colour = next(c for c in ("red", "green", "blue") if c != obj["colour"])
        wrong_colour.append(f"{item['answer']} the {obj['shape']} is {colour}.")
    text_only = metrics(mmhal.score(items, wrong_colour, judge)[0])
    seeing = metrics(mmhalv.score(items, wrong_colour, judge)[0])
    assert seeing["hallucination_rate"] == 1.0 and text_only["hallucination_rate"] < seeing["hallucination_rate"]


def test_hallucinated_answers_lower_every_judged_score(eval_scenes):
    """The world's prior-driven wrong answer to each item (same wording, wrong facts) scores lower."""
    settings, scenes, train, images = eval_scenes
    judge = make_judge({"backend": "exact"})
    rng = random.Random(1)
    for kind, module in (("mmhalv", mmhalv), ("llavaw", llavaw), ("mmvet", mmvet)):
        items = synthetic.ITEMS[kind](scenes, images, 0, train)
        wrong = [
            hallucinated_answer(Task(**it["meta"]["task"]), Scene.from_dict(it["meta"]["scene"]), settings, rng, 0).text
            for it in items
        ]
        right = metrics(module.score(items, [it["answer"] for it in items], judge)[0])["score"]
        assert metrics(module.score(items, wrong, judge)[0])["score"] < right


# ------------------------------------------------------------------- judge failures, counted beside the metric


def test_judge_failures_and_unparsed_grades_are_counted_not_scored(chat_server):
    server = chat_server(["Fine answer.\nRating: 6", "Invents a dog.\nRating: 1", "no idea", 500])
    items = [
        {
            "id": f"i{k}",
            "image": "x.png",
            "question": "what is this?",
            "answer": "a cat",
            "subset": t,
            "meta": {"objects": ["cat"]},
        }
        for k, t in enumerate(["attribute", "attribute", "counting", "counting"])
    ]
    # distinct answers: one judge call per distinct prompt (a repeated prompt gets the same verdict)
    answers = ["a cat.", "a dog.", "a cat, really.", ""]
    rows, judgments = mmhal.score(items, answers, make_judge(openai_spec(max_retries=1, concurrency=1)))
    m = metrics(rows)
    assert m["score"] == pytest.approx(3.5)  # (6 + 1) / 2: only the two judged items
    assert m["hallucination_rate"] == 0.5 and m["judged"] == 2
    assert m["judge_unparsed"] == 1 and m["judge_failed"] == 1 and m["empty_answers"] == 1
    assert metrics(rows, "attribute")["score"] == 3.5 and math.isnan(metrics(rows, "counting")["score"])
    assert [j["status"] for j in judgments] == ["ok", "ok", "unparsed", "failed"]
    assert judgments[2]["raw"] == "no idea" and judgments[3]["raw"] is None
    assert all(j["judge_id"] == "openai:judge-model-7b" and len(j["prompt_hash"]) == 64 for j in judgments)
    assert len(server.requests) == 5  # 3 answers + the failing one tried twice


def test_llavaw_score_is_relative_to_the_reference_and_mmvet_in_percent(chat_server):
    chat_server(["8 6\nAssistant 1 is more detailed.", "10 10\nboth good", "7 x\n"])
    items = [
        {
            "id": f"w{k}",
            "image": "x.png",
            "question": "describe",
            "answer": "ref",
            "subset": c,
            "meta": {"context": "a cat on a mat"},
        }
        for k, c in enumerate(["conv", "detail", "complex"])
    ]
    rows, _ = llavaw.score(items, ["a", "b", "c"], make_judge(openai_spec()))
    m = metrics(rows)
    assert m["score"] == pytest.approx(100 * 16 / 18) and m["judge_unparsed"] == 1
    assert metrics(rows, "conv")["score"] == pytest.approx(75.0)


def test_mmvet_score_is_mean_correctness_in_percent_per_capability(chat_server):
    chat_server(["1.0", "0.5", "0.0", "correct"])
    items = [
        {"id": f"v{k}", "image": "x.png", "question": "q", "answer": "a", "subset": "all", "meta": {"capability": caps}}
        for k, caps in enumerate([["ocr"], ["ocr", "math"], ["rec"], ["rec"]])
    ]
    rows, _ = mmvet.score(items, ["a", "b", "c", "d"], make_judge(openai_spec()))
    assert metrics(rows)["score"] == pytest.approx(50.0) and metrics(rows)["judge_unparsed"] == 1
    assert metrics(rows, "ocr")["score"] == 75.0 and metrics(rows, "math")["score"] == 50.0
    assert metrics(rows, "rec")["score"] == 0.0


# ------------------------------------------------------------------------- real-format loaders on fixtures


def png_bytes(colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, "PNG")
    return buffer.getvalue()


def write_parquet(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def image(data=True):
    return {"bytes": png_bytes() if data else None, "path": "x.png"}


def run_loader(kind, snapshot, tmp_path):
    manifest = benchmark_to_items(kind, snapshot, tmp_path / "items.jsonl", tmp_path / "images", tmp_path / "m.json")
    return manifest, read_jsonl(tmp_path / "items.jsonl")


def test_llavaw_loader(tmp_path):
    rows = [
        {
            "question_id": 0,
            "question": "What is unusual?",
            "image": image(),
            "caption": "a man ironing",
            "gpt_answer": "He irons on a taxi.",
            "category": "complex",
            "image_id": "001",
        },
        {
            "question_id": 1,
            "question": "Describe.",
            "image": image(False),
            "caption": "",
            "gpt_answer": "x",
            "category": "detail",
            "image_id": "002",
        },
        {
            "question_id": 2,
            "question": "Name it.",
            "image": image(),
            "caption": "",
            "gpt_answer": "",
            "category": "conv",
            "image_id": "003",
        },
    ]
    write_parquet(tmp_path / "snap" / "data" / "train-00000-of-00001.parquet", rows)
    manifest, items = run_loader("llavaw", tmp_path / "snap", tmp_path)
    assert manifest.rows_read == 3 and manifest.rows_kept == 1
    assert dict(manifest.dropped) == {"missing_image": 1, "missing_answer": 1}
    assert items[0]["subset"] == "complex" and items[0]["meta"]["context"] == "a man ironing"
    assert items[0]["answer"] == "He irons on a taxi." and Image.open(items[0]["image"]).size == (8, 8)


def test_mmvet_textvqa_and_gqa_loaders(tmp_path):
    write_parquet(
        tmp_path / "mmvet" / "data" / "test.parquet",
        [
            {
                "question_id": "v1_0",
                "image": image(),
                "question": "What is x?",
                "answer": "-1 <AND> -5",
                "capability": "ocr,math",
                "image_source": "a",
            },
            {
                "question_id": "v1_1",
                "image": image(),
                "question": "",
                "answer": "2",
                "capability": "rec",
                "image_source": "b",
            },
        ],
    )
    manifest, items = run_loader("mmvet", tmp_path / "mmvet", tmp_path / "o1")
    assert items[0]["meta"]["capability"] == ["ocr", "math"] and dict(manifest.dropped) == {"missing_question": 1}

    write_parquet(
        tmp_path / "textvqa" / "data" / "validation.parquet",
        [
            {
                "question_id": 7,
                "question": "what brand?",
                "image": image(),
                "image_id": "i7",
                "answers": ["nokia"] * 7 + ["nokia phone"] * 3,
            },
            {"question_id": 8, "question": "what time?", "image": image(), "image_id": "i8", "answers": []},
        ],
    )
    manifest, items = run_loader("vqat", tmp_path / "textvqa", tmp_path / "o2")
    assert items[0]["answer"] == "nokia" and len(items[0]["meta"]["answers"]) == 10
    assert dict(manifest.dropped) == {"missing_answer": 1}
    rows, _ = vqat.score(items, ["Nokia."])
    assert metrics(rows)["accuracy"] == 1.0

    write_parquet(tmp_path / "gqa" / "testdev_balanced_images" / "testdev.parquet", [{"id": "n1", "image": image()}])
    write_parquet(
        tmp_path / "gqa" / "testdev_balanced_instructions" / "testdev.parquet",
        [
            {
                "id": "q1",
                "imageId": "n1",
                "question": "Is the cup on the left?",
                "answer": "yes",
                "fullAnswer": "Yes, it is.",
                "types": {"structural": "verify"},
            },
            {
                "id": "q2",
                "imageId": "n404",
                "question": "What colour?",
                "answer": "red",
                "fullAnswer": "",
                "types": {"structural": "query"},
            },
        ],
    )
    manifest, items = run_loader("gqa", tmp_path / "gqa", tmp_path / "o3")
    assert [i["id"] for i in items] == ["gqa-q1"] and dict(manifest.dropped) == {"missing_image": 1}


def test_mmhal_loader_reads_the_template_and_images_from_files_or_a_zip(tmp_path):
    snap = tmp_path / "mmhal"
    snap.mkdir()
    records = [
        {
            "question_type": "attribute",
            "question_topic": "animal",
            "image_id": "img0",
            "image_src": "https://example.org/a/img0.jpg",
            "image_content": ["Cat", "Sofa"],
            "question": "What colour is the cat?",
            "gt_answer": "The cat is black.",
            "model_answer": "",
        },
        {
            "question_type": "counting",
            "question_topic": "people",
            "image_id": "img1",
            "image_src": "https://example.org/img1.jpg",
            "image_content": ["Person"],
            "question": "How many people?",
            "gt_answer": "Three.",
            "model_answer": "",
        },
        {
            "question_type": "other",
            "question_topic": "x",
            "image_id": "gone",
            "image_src": "https://example.org/gone.jpg",
            "image_content": [],
            "question": "Where?",
            "gt_answer": "Here.",
            "model_answer": "",
        },
    ]
    (snap / "response_template.json").write_text(json.dumps(records))
    (snap / "images").mkdir()
    (snap / "images" / "img0.jpg").write_bytes(png_bytes())
    with zipfile.ZipFile(snap / "test_data.zip", "w") as archive:
        archive.writestr("images/img1.jpg", png_bytes((0, 0, 255)))
    manifest, items = run_loader("mmhal", snap, tmp_path / "out")
    assert [i["subset"] for i in items] == ["attribute", "counting"] and dict(manifest.dropped) == {"missing_image": 1}
    assert items[0]["meta"]["objects"] == ["Cat", "Sofa"] and items[0]["answer"] == "The cat is black."


# ------------------------------------------------------------------------------- evaluation end to end


def test_records_without_image_or_reference_are_skipped_and_counted(tmp_path):
    (tmp_path / "a.png").write_bytes(png_bytes())
    items = [
        {"id": "ok", "image": str(tmp_path / "a.png"), "answer": "yes"},
        {"id": "noimg", "image": str(tmp_path / "missing.png"), "answer": "yes"},
        {"id": "noref", "image": str(tmp_path / "a.png"), "answer": " "},
    ]
    kept, skipped = usable_items(items)
    assert [i["id"] for i in kept] == ["ok"] and skipped == {"skipped_no_image": 1, "skipped_no_reference": 1}


def test_evaluate_a_judged_benchmark_with_the_tiny_llava(tiny_model, eval_scenes, tmp_path):
    _, scenes, train, images = eval_scenes
    model_dir, _ = tiny_model
    items = synthetic.ITEMS["mmhalv"](scenes, images, 0, train)[:20]
    items[0] = {**items[0], "image": str(tmp_path / "lost.png")}
    with open(tmp_path / "items.jsonl", "w") as fh:
        for item in items:
            fh.write(json.dumps(item) + "\n")
    out = {k: tmp_path / f"{k}.jsonl" for k in ("predictions", "judgments")}
    result = evaluate(
        "base",
        "mmhalv",
        {"kind": "mmhalv", "source": "synthetic", "batch_size": 8},
        model_dir,
        None,
        tmp_path / "items.jsonl",
        out["predictions"],
        out["judgments"],
        tmp_path / "metrics.json",
        judge_spec={"backend": "exact"},
        judge_cache=tmp_path / "cache.sqlite",
    )
    m = metrics(result["metrics"])
    assert m["judged"] == 19 and m["skipped_no_image"] == 1 and 0 <= m["score"] <= 6
    assert result["decoding"]["do_sample"] is False and result["decoding"]["max_new_tokens"] == 48
    assert result["judge"]["id"] == "exact-world" and result["eval_samples_per_second"] > 0
    judgments = read_jsonl(out["judgments"])
    assert len(judgments) == 19 and all(j["raw"] and j["judge_id"] == "exact-world" for j in judgments)
    with pytest.raises(ValueError, match="scored by a judge"):
        evaluate(
            "base",
            "mmhalv",
            {"kind": "mmhalv", "source": "synthetic"},
            model_dir,
            None,
            tmp_path / "items.jsonl",
            out["predictions"],
            out["judgments"],
            tmp_path / "metrics.json",
        )


def test_evaluate_suite_loads_the_policy_once_and_writes_what_evaluate_writes(
    tiny_model, eval_scenes, tmp_path, monkeypatch
):
    import mmalign.evaluate.run as evaluation

    _, scenes, train, images = eval_scenes
    model_dir, _ = tiny_model
    specs = {
        "gqa": ({"kind": "gqa", "source": "synthetic", "batch_size": 8}, gqa, None),
        "mmhalv": ({"kind": "mmhalv", "source": "synthetic", "batch_size": 8}, mmhalv, {"backend": "exact"}),
    }
    runs, alone = {}, {}
    for name, (spec, _, judge) in specs.items():
        items = tmp_path / f"{name}.jsonl"
        items.write_text("".join(json.dumps(i) + "\n" for i in synthetic.ITEMS[name](scenes, images, 0, train)[:12]))
        runs[name] = {
            "spec": spec,
            "items_path": items,
            "judge_spec": judge,
            "judge_model_dir": None,
            **{f"out_{k}": tmp_path / f"suite_{name}_{k}" for k in ("predictions", "judgments", "metrics")},
        }
        alone[name] = evaluate(
            "base",
            name,
            spec,
            model_dir,
            None,
            items,
            *(tmp_path / f"alone_{name}_{k}" for k in ("predictions", "judgments", "metrics")),
            judge_spec=judge,
            judge_cache=tmp_path / "cache.sqlite",
        )
    loads = []
    real_load = evaluation.load_policy
    monkeypatch.setattr(evaluation, "load_policy", lambda *a: loads.append(a) or real_load(*a))
    results = evaluate_suite("base", runs, model_dir, None, judge_cache=tmp_path / "suite_cache.sqlite")
    assert len(loads) == 1 and list(results) == ["gqa", "mmhalv"]
    for name in specs:
        assert results[name]["metrics"] == alone[name]["metrics"] and results[name]["benchmark"] == name
        for kind in ("predictions", "judgments"):
            assert (tmp_path / f"suite_{name}_{kind}").read_text() == (tmp_path / f"alone_{name}_{kind}").read_text()
        assert json.loads((tmp_path / f"suite_{name}_metrics").read_text())["items"] == 12


# ------------------------------------------------------------------------------ Object HalBench with CHAIR


@pytest.mark.parametrize(
    "text, objects",
    [
        ("A man holds a hot dog next to two dogs.", ["person", "hot dog", "dog"]),
        ("Children play with a teddy bear on the sofa.", ["person", "teddy bear", "couch"]),
        ("Knives and forks lie on the dining table.", ["knife", "fork", "dining table"]),
        ("A stop sign and a traffic light.", ["stop sign", "traffic light"]),
        ("A sunny beach.", []),
    ],
)
def test_coco_object_mentions(text, objects):
    from mmalign.evaluate.coco_objects import mentioned_objects

    assert mentioned_objects(text) == objects


def test_object_halbench_loader_and_chair_on_known_captions(tmp_path):
    import base64

    from mmalign.evaluate.benchmarks import objhal

    snap, annotations = tmp_path / "objhal", tmp_path / "coco"
    snap.mkdir(), annotations.mkdir()
    encoded = base64.b64encode(png_bytes()).decode()
    records = [
        {"image_id": 42, "image": encoded, "question": "Describe this image in detail."},
        {"image_id": 7, "image": "", "question": "Describe."},
        {"image_id": "COCO_val2014_000000000009", "image": encoded, "question": "What is in the image?"},
    ]
    (snap / "obj_halbench_300_with_image.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    (annotations / "instances_val2014.json").write_text(
        json.dumps(
            {
                "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}, {"id": 62, "name": "chair"}],
                "annotations": [
                    {"image_id": 42, "category_id": 1},
                    {"image_id": 42, "category_id": 18},
                    {"image_id": 9, "category_id": 62},
                ],
            }
        )
    )
    (annotations / "captions_val2014.json").write_text(
        json.dumps(
            {
                "annotations": [
                    {"image_id": 42, "caption": "A woman walks her puppy past a bench."},
                    {"image_id": 9, "caption": "An empty chair."},
                ]
            }
        )
    )
    manifest = benchmark_to_items(
        "objhal", snap, tmp_path / "items.jsonl", tmp_path / "images", tmp_path / "m.json", annotations
    )
    items = read_jsonl(tmp_path / "items.jsonl")
    assert dict(manifest.dropped) == {"missing_image": 1}
    assert items[0]["meta"]["objects"] == ["bench", "dog", "person"] and items[1]["meta"]["objects"] == ["chair"]
    rows, judgments = objhal.score(items, ["A man and his dog sit on a bench next to a cat.", "A chair and a chair."])
    m = metrics(rows)
    # mentions: person, dog, bench, cat (hallucinated); chair, chair -> CHAIR_i 1/6, CHAIR_s 1/2, recall 4/4
    assert m["chair_i"] == pytest.approx(1 / 6) and m["chair_s"] == 0.5 and m["recall"] == 1.0
    assert judgments[0]["hallucinated"] == ["cat"]


# ------------------------------------------------------------------------------------------------ config


def test_config_names_a_missing_or_misspelled_judge_by_its_key():
    import copy

    import yaml

    from mmalign.config import ConfigError, apply_defaults, check_references, validate_config

    repo = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    apply_defaults(config)
    schema = repo / "workflow" / "schemas" / "config.schema.yaml"
    validate_config(copy.deepcopy(config), schema)
    check_references(copy.deepcopy(config))
    no_judge = copy.deepcopy(config)
    del no_judge["benchmarks"]["mmhal"]["judge"]
    with pytest.raises(ConfigError, match="'benchmarks.mmhal.judge': kind mmhal is scored by a judge"):
        check_references(no_judge)
    unknown = copy.deepcopy(config)
    unknown["benchmarks"]["mmvet"]["judge"] = "gpt5"
    with pytest.raises(ConfigError, match="'benchmarks.mmvet.judge': no judges entry named 'gpt5'"):
        check_references(unknown)
    typo = copy.deepcopy(config)
    typo["judges"]["exact"]["eror_rate"] = 0.1
    with pytest.raises(ConfigError, match="'judges.exact.eror_rate': unknown key"):
        validate_config(typo, schema)


def test_an_unset_judge_endpoint_fails_before_any_generation(tmp_path, monkeypatch):
    """The model directory does not exist: had the job loaded the policy or generated, the error would be another."""
    from chat_server import openai_spec
    from mmalign.evaluate.run import evaluate

    for name in ("TEST_JUDGE_MODEL", "TEST_JUDGE_URL", "TEST_JUDGE_KEY"):
        monkeypatch.delenv(name, raising=False)
    png = tmp_path / "x.png"
    png.write_bytes(png_bytes())
    items = tmp_path / "items.jsonl"
    items.write_text(
        json.dumps({"id": "0", "subset": "all", "image": str(png), "question": "Q?", "answer": "A"}) + "\n"
    )
    outs = [tmp_path / name for name in ("predictions.jsonl", "judgments.jsonl", "metrics.json")]
    spec = {"kind": "mmvet", "source": "download"}

    def run():
        evaluate("base", "mmvet", spec, tmp_path / "no-model", None, items, *outs, judge_spec=openai_spec())

    with pytest.raises(ValueError, match="environment variable TEST_JUDGE_MODEL, which is not set"):
        run()
    monkeypatch.setenv("TEST_JUDGE_MODEL", "gpt-4")  # no base URL: OpenAI's own API, which needs its key
    with pytest.raises(ValueError, match="environment variable TEST_JUDGE_KEY, which is not set"):
        run()
    assert not any(path.exists() for path in outs)
