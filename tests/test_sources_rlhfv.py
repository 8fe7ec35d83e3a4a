"""RLHF-V adapter on a parquet fixture in the real layout.

Where the format comes from (checked with the docs/code search tools):
- HF dataset card of ``openbmb/RLHF-V-Dataset`` (README.md, commits 52f5470 and later): ``configs: default,
  data_files: RLHF-V-Dataset.parquet``; features ``ds_name`` (string), ``image`` (image), ``text`` (string),
  ``origin_dataset`` (string), ``origin_split`` (string), ``idx`` (int64), ``image_path`` (string); "text: preference
  data. Each data item contains a dict with the keys "question", "chosen", and "rejected"".
- Public loaders (``make_rlhfv_paired_dataset``; lvlm_hallucination ``RLHFVDatasetBuilder``): ``load_dataset(...)``
  then ``json.loads(sample["text"])`` and its ``question`` / ``chosen`` / ``rejected``.
The parquet is written with ``datasets`` and an ``Image()`` feature, so the image column has the Hub's struct
(``bytes``, ``path``) layout.
"""

from __future__ import annotations

import io
import json

import datasets
import pytest
from PIL import Image

from mmalign.pairs.sources.rlhfv import rlhfv_to_pairs
from mmalign.schema import read_pairs

FEATURES = datasets.Features(
    {
        "ds_name": datasets.Value("string"),
        "image": datasets.Image(),
        "text": datasets.Value("string"),
        "origin_dataset": datasets.Value("string"),
        "origin_split": datasets.Value("string"),
        "idx": datasets.Value("int64"),
        "image_path": datasets.Value("string"),
    }
)


def jpeg(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (10, 7), color).save(buf, "JPEG")
    return buf.getvalue()


def text(question, chosen, rejected):
    return json.dumps({"question": question, "chosen": chosen, "rejected": rejected})


RED, GREEN = jpeg((200, 0, 0)), jpeg((0, 200, 0))
ROWS = [  # (text, image bytes or None)
    (text("Describe the image.", "A red wall.", "A red wall with a clock."), RED),
    (text("What is in the picture?", "A green field.", "A green field with cows."), GREEN),
    (text("What colour is it?", "Red.", "Red, and a blue door."), RED),  # same picture: stored once
    ("{not json", RED),
    (json.dumps({"question": "Q?", "chosen": "A."}), RED),  # no rejected
    (text("Describe.", "", "Something."), RED),
    (text("Describe.", "Same.", "Same."), RED),
    (text("Describe the image.", "A red wall.", "A red wall with a clock."), RED),  # exact repeat
    (text("Count the cars.", "Two.", "Three."), None),
    (text("Read the sign.", "STOP.", "GO."), b"\xff\xd8\xff garbage"),
]


def write_parquet(path, rows):
    data = {k: [] for k in FEATURES}
    for i, (txt, image) in enumerate(rows):
        data["ds_name"].append("RLHF-V")
        data["image"].append(None if image is None else {"bytes": image, "path": None})
        data["text"].append(txt)
        data["origin_dataset"].append("UniMM-Chat")
        data["origin_split"].append("eyJtb2RlbCI6ICJtdWZmaW4ifQ==")
        data["idx"].append(i)
        data["image_path"].append(f"images/{i}.jpg")
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(data, features=FEATURES).to_parquet(str(path))


def test_pairs_images_and_counted_drops(tmp_path):
    snap = tmp_path / "snapshot"
    write_parquet(snap / "RLHF-V-Dataset.parquet", ROWS)
    out, man, images = tmp_path / "o" / "pairs.parquet", tmp_path / "o" / "manifest.json", tmp_path / "o" / "images"
    manifest = rlhfv_to_pairs(snap, images, out, man, max_drop_rate=0.8)
    pairs = read_pairs(out)
    assert manifest.rows_read == 10 and manifest.rows_kept == 3
    assert dict(manifest.dropped) == {
        "bad_text_json": 1,
        "missing_field": 1,
        "empty_response": 1,
        "chosen_equals_rejected": 1,
        "duplicate": 1,
        "missing_image": 1,
        "bad_image": 1,
    }
    assert list(pairs.id) == ["rlhfv-0", "rlhfv-1", "rlhfv-2"]
    assert pairs.chosen[0] == "A red wall." and pairs.rejected[0] == "A red wall with a clock."
    assert len(list(images.iterdir())) == 2 and pairs.image[0] == pairs.image[2]
    assert Image.open(pairs.image[1]).size == (10, 7)
    assert json.loads(pairs.meta[0])["origin_dataset"] == "UniMM-Chat"


def test_bound_and_empty_snapshot(tmp_path):
    snap = tmp_path / "snapshot"
    write_parquet(snap / "RLHF-V-Dataset.parquet", ROWS)
    with pytest.raises(ValueError, match=r"rlhfv: dropped 70\.0% of 10 records"):
        rlhfv_to_pairs(snap, tmp_path / "i", tmp_path / "p.parquet", tmp_path / "m.json", max_drop_rate=0.05)
    with pytest.raises(FileNotFoundError, match="no parquet files"):
        rlhfv_to_pairs(tmp_path / "empty", tmp_path / "i", tmp_path / "p.parquet", tmp_path / "m.json", 0.05)
