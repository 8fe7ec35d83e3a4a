"""POPE loader on parquet files written in the lmms-lab/POPE schema.

Where the schema comes from (checked with the code/docs search tools):
- lmms-eval ``lmms_eval/tasks/pope/{pope.yaml,pope_adv.yaml,utils.py}``: ``dataset_path: lmms-lab/POPE``; the ``pope``
  task reads config ``default`` split ``test``, ``pope_adv``/``pope_pop``/``pope_random`` read config ``Full`` splits
  ``adversarial``/``popular``/``random``; rows use ``doc["image"]`` (a PIL image once decoded by datasets),
  ``doc["question"]``, ``doc["answer"]`` (yes/no) and ``doc["question_id"]``.
- evalscope ``evalscope/benchmarks/pope/pope_adapter.py``: ``record["image"]["bytes"]``, ``record["answer"]``,
  ``record["category"]``, ``record["question_id"]``, ``record.get("id")``; subsets popular/adversarial/random.
- A download script in the code corpus saves ``record["image_source"]`` as the COCO file stem
  (``COCO_val2014_...``).
- HF repo tree (commit 4db1276): ``data/test-0000{0,1,2}-of-00003.parquet`` plus a ``Full/`` folder, 9k rows each.
The files are written with ``datasets`` and its ``Image`` feature, the writer that produced the Hub's parquet, so
the image column has the real ``struct<bytes: binary, path: string>`` layout.
"""

from __future__ import annotations

import io
import json

import datasets
import pyarrow.parquet as pq
import pytest
from PIL import Image

from mmalign.evaluate.pope_snapshot import pope_to_items
from mmalign.schema import ITEM_FIELDS, read_jsonl

FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "question_id": datasets.Value("string"),
        "question": datasets.Value("string"),
        "answer": datasets.Value("string"),
        "image_source": datasets.Value("string"),
        "image": datasets.Image(),
        "category": datasets.Value("string"),
    }
)


def jpeg(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (12, 9), color).save(buf, "JPEG")
    return buf.getvalue()


RED, BLUE = jpeg((200, 20, 20)), jpeg((20, 20, 200))
ROWS = [  # (question_id, question, answer, image_source, image bytes or None, category)
    ("1", "Is there a snowboard in the image?", "yes", "COCO_val2014_000000310196", RED, "adversarial"),
    ("2", "Is there a person in the image?", "no", "COCO_val2014_000000310196", RED, "adversarial"),
    ("1", "Is there a snowboard in the image?", "Yes", "COCO_val2014_000000310196", RED, "popular"),
    ("1", "Is there a dining table in the image?", "no", "COCO_val2014_000000210789", BLUE, "random"),
    ("3", "Is there a car in the image?", "yes", "COCO_val2014_000000210789", None, "random"),  # no image
    ("4", "Is there a truck in the image?", None, "COCO_val2014_000000210789", BLUE, "random"),  # no answer
]


def write_parquet(path, rows):
    data = {k: [] for k in FEATURES}
    for i, (qid, question, answer, source, image, category) in enumerate(rows):
        data["id"].append(str(i))
        data["question_id"].append(qid)
        data["question"].append(question)
        data["answer"].append(answer)
        data["image_source"].append(source)
        data["image"].append(None if image is None else {"bytes": image, "path": None})
        data["category"].append(category)
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(data, features=FEATURES).to_parquet(str(path))


@pytest.fixture
def snapshot(tmp_path):
    snap = tmp_path / "snapshot"
    write_parquet(snap / "data" / "test-00000-of-00002.parquet", ROWS[:3])
    write_parquet(snap / "data" / "test-00001-of-00002.parquet", ROWS[3:])
    (snap / "README.md").write_text("card")
    return snap


def run(tmp_path, snap):
    items, images, man = tmp_path / "out" / "items.jsonl", tmp_path / "out" / "images", tmp_path / "out" / "m.json"
    return pope_to_items(snap, items, images, man), items, images, man


def test_fixture_has_the_hub_image_layout(snapshot):
    schema = pq.read_schema(snapshot / "data" / "test-00000-of-00002.parquet")
    assert str(schema.field("image").type) == "struct<bytes: binary, path: string>"


def test_items_images_and_manifest(tmp_path, snapshot):
    manifest, items_path, images, man = run(tmp_path, snapshot)
    items = read_jsonl(items_path)
    assert [sorted(i) for i in items] == [sorted(ITEM_FIELDS)] * 4
    assert [(i["id"], i["subset"], i["answer"]) for i in items] == [
        ("pope-adversarial-1", "adversarial", "yes"),
        ("pope-adversarial-2", "adversarial", "no"),
        ("pope-popular-1", "popular", "yes"),
        ("pope-random-1", "random", "no"),
    ]
    assert items[0]["question"] == "Is there a snowboard in the image?"  # raw, no prompt suffix
    assert items[0]["meta"] == {"question_id": "1", "image_source": "COCO_val2014_000000310196"}
    # each image written once, as PNG, named after its COCO source
    assert sorted(p.name for p in images.iterdir()) == [
        "COCO_val2014_000000210789.png",
        "COCO_val2014_000000310196.png",
    ]
    assert items[0]["image"] == items[2]["image"] == str(images / "COCO_val2014_000000310196.png")
    with Image.open(items[3]["image"]) as im:
        assert im.format == "PNG" and im.size == (12, 9)
        assert im.getpixel((6, 4))[2] > 150  # the blue picture
    assert manifest.rows_read == 6 and manifest.rows_kept == 4
    assert dict(manifest.dropped) == {"missing_image": 1, "missing_answer": 1}
    on_disk = json.loads(man.read_text())
    assert on_disk["extra"]["per_subset"] == {"adversarial": 2, "popular": 1, "random": 1}
    assert on_disk["extra"]["images_written"] == 2


def test_both_configs_in_one_snapshot_are_not_doubled(tmp_path, snapshot):
    # the Full config repeats the same questions split by category (and may number them differently)
    full = [(str(int(q) + 100), *rest) for q, *rest in ROWS]
    write_parquet(snapshot / "Full" / "adversarial-00000-of-00001.parquet", full[:2])
    write_parquet(snapshot / "Full" / "random-00000-of-00001.parquet", full[3:4])
    manifest, items_path, _, man = run(tmp_path, snapshot)
    assert manifest.rows_read == 9 and manifest.rows_kept == 4
    assert json.loads(man.read_text())["extra"]["duplicates_skipped"] == 3
    assert len({i["id"] for i in read_jsonl(items_path)}) == 4


def test_category_from_path_when_column_missing(tmp_path):
    snap = tmp_path / "snap"
    rows = [("7", "Is there a dog in the image?", "no", "COCO_val2014_000000000042", RED, None)]
    write_parquet(snap / "Full" / "popular" / "0000.parquet", rows)
    _, items_path, _, _ = run(tmp_path, snap)
    assert [i["subset"] for i in read_jsonl(items_path)] == ["popular"]


def test_empty_snapshot_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no parquet files"):
        run(tmp_path, tmp_path / "empty")
