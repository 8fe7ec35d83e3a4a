"""POVID adapter on a fixture in the real record format.

Where the format comes from (checked with the code/docs search tools):
- github YiyangZhou/POVID README.md (commit 8341b69): "the format of preference data is as follows" -> keys ``id``,
  ``image``, ``conversations`` and ``rejected_conversations``, each a LLaVA list of ``{"from": "human"|"gpt",
  "value": ...}``; the human turn starts with ``"<image>\\n"``; images are "COCO 2014 train"; example id
  ``COCO_train2014_000000353952`` with ``"image": "./data/coco/COCO_train2014_000000353952.jpg"``.
- POVID ``llava/train/train_dpo.py`` ``LazySupervisedDataset``: ``json.load`` of one array,
  ``os.path.join(image_folder, sample["image"])``, ``preprocess_multimodal`` moves/strips ``<image>``, chosen from
  ``conversations`` and rejected from ``rejected_conversations``.
- HF dataset repo file list: ``POVID_preference_data_for_VLLMs.json`` (21.6 MB) and, from commit 5a8be94,
  ``POVID_preference_data_for_VLLMs_version_1.json`` (20.9 MB); current main keeps only the version_1 file.
The fixture has 3 good records and 5 malformed ones, one per drop reason.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from mmalign.pairs.sources.povid import povid_to_pairs
from mmalign.schema import PAIR_COLUMNS, read_pairs

FIXTURE = Path(__file__).parent / "fixtures" / "povid" / "POVID_preference_data_for_VLLMs.json"
# COCO train2014 names the fixture refers to; 000000999999 is left out on purpose (missing image).
IMAGES = ["COCO_train2014_000000353952.jpg", "COCO_train2014_000000000009.jpg", "COCO_train2014_000000000025.jpg"]


@pytest.fixture
def coco(tmp_path):
    images = tmp_path / "train2014"
    images.mkdir()
    for i, name in enumerate(IMAGES):
        Image.new("RGB", (8, 6), (40 * i, 100, 200)).save(images / name, "JPEG")
    return images


def run(tmp_path, images, max_drop_rate=0.7, records=FIXTURE):
    out, man = tmp_path / "out" / "pairs.parquet", tmp_path / "out" / "manifest.json"
    return povid_to_pairs(records, images, out, man, max_drop_rate), out, man


def test_converts_good_records_and_counts_drops(tmp_path, coco):
    manifest, out, man = run(tmp_path, coco)
    frame = read_pairs(out)
    assert list(frame.columns) == PAIR_COLUMNS
    assert manifest.rows_read == 8 and manifest.rows_kept == 3 == len(frame)
    assert dict(manifest.dropped) == {
        "missing_field": 1,
        "missing_image": 1,
        "empty_response": 1,
        "chosen_equals_rejected": 1,
        "multi_turn": 1,
    }
    on_disk = json.loads(man.read_text())
    assert on_disk["source"] == "povid" and on_disk["drop_rate"] == pytest.approx(5 / 8)

    assert set(frame["source"]) == {"povid"}
    assert set(frame["rejected_policy"]) == {""}
    # the same COCO image id twice -> unique pair ids
    assert list(frame["id"]) == [
        "povid-COCO_train2014_000000353952",
        "povid-COCO_train2014_000000353952-1",
        "povid-COCO_train2014_000000000009",
    ]
    # <image> placeholder stripped wherever it sat
    assert list(frame["prompt"]) == [
        "Describe this image in detail.",
        "What might the people be about to do?",
        "What food is in the lunch box?",
    ]
    assert not frame["prompt"].str.contains("<image>").any()
    assert frame["chosen"].iloc[0].startswith("A black and white photo of eleven people standing")
    assert "carriages" in frame["rejected"].iloc[0]
    # README-style "./data/coco/..." resolves to the bare COCO file name under images_dir
    assert [Path(p) for p in frame["image"]] == [coco / IMAGES[0], coco / IMAGES[0], coco / IMAGES[1]]
    assert all(Path(p).is_file() for p in frame["image"])
    meta = json.loads(frame["meta"].iloc[2])
    assert meta == {
        "povid_id": "COCO_train2014_000000000009",
        "image_field": "./data/coco/COCO_train2014_000000000009.jpg",
        "index": 2,
    }


def test_too_many_drops_raises_and_writes_nothing(tmp_path, coco):
    with pytest.raises(ValueError, match=r"povid: dropped 62\.5% of 8 records \(max 50\.0%\)"):
        run(tmp_path, coco, max_drop_rate=0.5)
    assert not (tmp_path / "out").exists()


def test_jsonl_and_exact_duplicates(tmp_path, coco):
    records = json.loads(FIXTURE.read_text())[:1] * 2
    path = tmp_path / "povid.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    manifest, out, _ = run(tmp_path, coco, max_drop_rate=0.5, records=path)
    assert manifest.rows_kept == 1 and dict(manifest.dropped) == {"duplicate": 1}
    assert len(pd.read_parquet(out)) == 1


def test_missing_image_dir_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        run(tmp_path, tmp_path / "nowhere")


def test_all_images_missing_fails_loudly(tmp_path, coco):
    shutil.rmtree(coco)
    coco.mkdir()
    with pytest.raises(ValueError, match=r"povid: dropped 100\.0%"):
        run(tmp_path, coco, max_drop_rate=0.7)
