"""Bad pair data and bad configs: each case is a clear error naming the place, or a counted drop by reason."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

from mmalign.config import ConfigError, apply_defaults, check_references, check_yaml_file, expand_sweeps
from mmalign.pairs.sources.povid import povid_to_pairs
from mmalign.pairs.sources.vlfeedback import vlfeedback_to_pairs
from mmalign.schema import PairTableError, validate_pair_table, write_pairs

REPO = Path(__file__).resolve().parents[1]


def jpeg_bytes(size=(16, 12)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (120, 40, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


def povid_record(i: int, image: str) -> dict:
    turn = lambda answer: [{"from": "human", "value": "<image>\nDescribe."}, {"from": "gpt", "value": answer}]  # noqa: E731
    return {"id": f"r{i}", "image": image, "conversations": turn(f"a cat {i}"), "rejected_conversations": turn("a dog")}


def test_povid_keeps_only_images_that_decode_inside_their_folder(tmp_path):
    images = tmp_path / "coco"
    images.mkdir()
    (images / "good.jpg").write_bytes(jpeg_bytes())
    (images / "empty.jpg").write_bytes(b"")
    (images / "text.jpg").write_text("not an image at all")
    (tmp_path / "outside.jpg").write_bytes(jpeg_bytes())
    records = [
        povid_record(0, "good.jpg"),
        povid_record(1, "empty.jpg"),
        povid_record(2, "text.jpg"),
        povid_record(3, "../outside.jpg"),
        povid_record(4, str(tmp_path / "outside.jpg")),
    ]
    (tmp_path / "povid.json").write_text(json.dumps(records))
    manifest = povid_to_pairs(tmp_path / "povid.json", images, tmp_path / "p.parquet", tmp_path / "m.json", 1.0)
    assert manifest.rows_kept == 1
    assert dict(manifest.dropped) == {"bad_image": 2, "image_outside_folder": 2}


def test_vlfeedback_drops_a_truncated_jpeg_that_verify_keeps(tmp_path):
    images = tmp_path / "merged_images"
    images.mkdir()
    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(buffer, "JPEG")
    whole = buffer.getvalue()
    (images / "a.jpg").write_bytes(whole)
    (images / "b.jpg").write_bytes(whole[:-100])  # the last 100 bytes lost: Image.verify() accepts it
    with Image.open(images / "b.jpg") as image:
        image.verify()
    completion = lambda model, text, score: {  # noqa: E731
        "model": model,
        "response": text,
        "annotations": {"Helpfulness": {"Rating": str(score)}},
    }
    lines = [
        {"id": name, "prompt": "Describe.", "completions": [completion("x", "good", 5), completion("y", "bad", 1)]}
        for name in ("a", "b")
    ]
    lines.append(
        {"id": "c", "prompt": "Describe.", "completions": [completion("x", " ", 5), completion("y", "bad", 1)]}
    )
    (tmp_path / "v.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    (images / "c.jpg").write_bytes(whole)
    manifest = vlfeedback_to_pairs(tmp_path / "v.jsonl", images, tmp_path / "p.parquet", tmp_path / "m.json", 1.0)
    assert manifest.rows_kept == 1
    assert manifest.dropped["bad_image"] == 1  # an empty response is never ranked: c has too few rated responses
    assert manifest.dropped["too_few_rated_responses"] == 1


def pair(i, image, prompt="Describe.", chosen="a cat", rejected="a dog", rejected_policy=""):
    return {
        "id": f"p{i}",
        "image": str(image),
        "prompt": prompt,
        "chosen": chosen,
        "rejected": rejected,
        "rejected_policy": rejected_policy,
        "source": "test",
        "meta": {},
    }


def test_the_pair_table_is_checked_before_training_naming_the_first_bad_rows(tmp_path):
    good = tmp_path / "good.jpg"
    good.write_bytes(jpeg_bytes())
    rows = [pair(0, good), pair(1, tmp_path / "missing.jpg"), pair(2, good, prompt="  "), pair(3, good, rejected="")]
    write_pairs(rows, tmp_path / "pairs.parquet")
    with pytest.raises(PairTableError) as err:
        validate_pair_table(tmp_path / "pairs.parquet", ["rejected"])
    message = str(err.value)
    assert "3 of 4 pairs cannot be trained on" in message
    assert "p1 (missing_image)" in message and "p2 (empty_prompt)" in message and "p3 (empty_rejected)" in message
    write_pairs([pair(0, good), pair(1, good, rejected_policy="")], tmp_path / "bdhs.parquet")
    with pytest.raises(PairTableError, match=r"p0 \(empty_rejected_policy\)"):
        validate_pair_table(tmp_path / "bdhs.parquet", ["rejected", "rejected_policy"])
    assert validate_pair_table(tmp_path / "bdhs.parquet", []) == 2  # online: the run makes its own rejected


def test_a_training_job_on_a_bad_table_fails_before_loading_the_model(tmp_path):
    """The model directory does not exist: the table is checked first, so the error is about the table."""
    from mmalign.train.dpo import train_dpo
    from mmalign.train.settings import DPOSettings

    write_pairs([pair(0, tmp_path / "missing.jpg")], tmp_path / "pairs.parquet")
    with pytest.raises(PairTableError, match="p0 \\(missing_image\\)"):
        train_dpo(tmp_path / "no-model", tmp_path / "pairs.parquet", tmp_path / "run", DPOSettings())


def test_object_halbench_names_the_file_and_line_and_reads_only_its_own_file(tmp_path):
    from mmalign.evaluate.snapshots import OBJHAL_FILE, ItemWriter, objhal_items

    annotations = tmp_path / "coco"
    annotations.mkdir()
    (annotations / "instances_val2014.json").write_text(json.dumps({"categories": [], "annotations": []}))
    (annotations / "captions_val2014.json").write_text(json.dumps({"annotations": []}))
    snapshot = tmp_path / "objhal"
    snapshot.mkdir()
    (snapshot / "notes.jsonl").write_text("this is not Object HalBench\n")
    writer = ItemWriter("objhal", tmp_path / "images")
    with pytest.raises(FileNotFoundError, match=rf"no {OBJHAL_FILE} .*jsonl there: \['notes.jsonl'\]"):
        objhal_items(snapshot, writer, annotations)
    (snapshot / OBJHAL_FILE).write_text(json.dumps({"image_id": 1, "image": "", "question": "Q"}) + "\n{broken\n")
    with pytest.raises(ValueError, match=rf"{OBJHAL_FILE}, line 2: not a JSON record"):
        objhal_items(snapshot, writer, annotations)
    (annotations / "captions_val2014.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"no \['captions_val2014.json'\]"):
        objhal_items(snapshot, writer, annotations)


def test_coco_truth_reads_train_and_val_like_the_reference_chair(tmp_path):
    from mmalign.evaluate.snapshots import coco_truth

    cats = [{"id": 1, "name": "dog"}, {"id": 2, "name": "cat"}]
    for split, image_id, cat in (("val2014", 10, 1), ("train2014", 20, 2)):
        (tmp_path / f"instances_{split}.json").write_text(
            json.dumps({"categories": cats, "annotations": [{"image_id": image_id, "category_id": cat}]})
        )
        (tmp_path / f"captions_{split}.json").write_text(json.dumps({"annotations": []}))
    assert coco_truth(tmp_path) == {10: {"dog"}, 20: {"cat"}}


def test_a_where_filter_that_matches_nothing_says_so_with_the_values_present(tmp_path):
    from mmalign.pairs.derived import subsample

    good = tmp_path / "good.jpg"
    good.write_bytes(jpeg_bytes())
    rows = [pair(i, good) | {"meta": {"chosen_model": m}} for i, m in enumerate(["gpt-4v", "llava-v1.5-7b"])]
    write_pairs(rows, tmp_path / "source.parquet")
    spec = {"kind": "subsample", "source": "vlfeedback", "n": 1, "where": {"chosen_model": ["GPT-4V"]}}
    with pytest.raises(
        ValueError, match=r"where.chosen_model' \['GPT-4V'\] matches none .*\['gpt-4v', 'llava-v1.5-7b'\]"
    ):
        subsample(spec, tmp_path / "source.parquet", tmp_path / "out.parquet", tmp_path / "m.json", 0)


def test_a_missing_records_file_lists_the_files_there(tmp_path):
    from mmalign.pairs.build import build_pairset

    (tmp_path / "snap").mkdir()
    (tmp_path / "snap" / "POVID_preference_data_for_VLLMs_version_1.json").write_text("[]")
    spec = {"kind": "povid", "records_file": "POVID_preference_data_for_VLLMs.json", "images": "coco"}
    inputs = {"snapshot": str(tmp_path / "snap"), "images": str(tmp_path)}
    with pytest.raises(FileNotFoundError, match=r"there: \['POVID_preference_data_for_VLLMs_version_1.json'\]"):
        build_pairset(spec, inputs, tmp_path / "p.parquet", tmp_path / "m.json", 0, None, name="povid")


# ---------------------------------------------------------------------------------------------------- configs


def paper(**changes) -> dict:
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    for dotted, value in changes.items():
        *path, key = dotted.split("__")
        node = config
        for part in path:
            node = node[part]
        node[key] = value
    return config


def problems(config: dict) -> str:
    expand_sweeps(config)
    apply_defaults(config)
    with pytest.raises(ConfigError) as err:
        check_references(config)
    return str(err.value)


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"variants__dpo_povid__loss_weights": [1.0, 0.5]},
            "'variants.dpo_povid.loss_weights': 2 weights for 1 loss types",
        ),
        ({"variants": {}, "sweeps": {}}, "config key 'variants': no variant to train"),
        ({"judges__gpt4__max_new_tokens": 64}, "config key 'judges.gpt4': judge backend 'openai': unknown setting"),
    ],
    ids=["loss_weights length", "no variants", "another backend's setting"],
)
def test_config_mistakes_fail_at_load_naming_the_key(changes, message):
    assert message in problems(paper(**changes))


def test_a_table_row_naming_an_unknown_variant_fails_unless_listed_as_not_run():
    config = paper()
    config["report"]["tables"]["table2"]["rows"]["DPO, POVID (Full)"] = "dpo_povdi"  # a typo
    assert "row 'DPO, POVID (Full)' names 'dpo_povdi'" in problems(config)
    config = paper()
    config["report"]["not_run"].append("dpo_povdi")
    config["report"]["tables"]["table2"]["rows"]["DPO, POVID (Full)"] = "dpo_povdi"
    expand_sweeps(config)
    apply_defaults(config)
    check_references(config)  # listed on purpose: shown as "not run"


def test_duplicate_yaml_keys_and_syntax_errors_name_file_and_line(tmp_path):
    (tmp_path / "dup.yaml").write_text("study: x\nseed: 0\nvariants:\n  dpo: {pairset: a}\n  dpo: {pairset: b}\n")
    with pytest.raises(ConfigError, match=r"dup.yaml:5: duplicate key 'dpo' \(first at line 4\)"):
        check_yaml_file(tmp_path / "dup.yaml")
    (tmp_path / "bad.yaml").write_text("study: x\nseed: [0,\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:3:1: "):
        check_yaml_file(tmp_path / "bad.yaml")
    assert check_yaml_file(REPO / "config" / "paper.yaml")["study"] == "paper-llava-1.6-7b"


def test_snakemake_refuses_a_config_file_with_a_duplicate_key(tmp_path):
    import subprocess
    import sys

    text = (REPO / "config" / "paper.yaml").read_text().replace("seed: 0\n", "seed: 0\nseed: 1\n", 1)
    (tmp_path / "paper-dup.yaml").write_text(text)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-n", "--directory", str(tmp_path)]
    out = subprocess.run([*cmd, "--configfile", str(tmp_path / "paper-dup.yaml")], capture_output=True, text=True)
    assert out.returncode != 0 and "paper-dup.yaml:12: duplicate key 'seed'" in out.stdout + out.stderr
