"""VLFeedback adapter on a fixture in the real record format.

Where the format comes from (checked with the docs/code search tools):
- HF dataset card of ``MMInstruction/VLFeedback`` (README.md, commit 0bd5e14): features ``id`` (string), ``prompt``
  (string), ``models`` (sequence of strings), ``completions`` (sequence of {``annotations``: {``Helpfulness``,
  ``Ethical Considerations``, ``Visual Faithfulness``: {``Rating``: string, ``Rationale``: string}}, ``model``,
  ``response``}), ``img_path``; 80,258 rows; "each data sample contains 4 responses from different models".
- The repo's loading script ``VLFeedback.py`` (commits 7ee0bba, c9b311a): reads ``vlfeedback_80k.jsonl`` line by
  line and sets ``img_path = os.path.join(images_dir, f"{id}.jpg")`` with images_dir = extracted
  ``merged_images.zip`` + ``merged_images``.
- Silkie-style pairing (``make_vlfeedback_paired_dataset`` in public DPO loaders): score = mean of
  ``float(annotation[aspect]["Rating"])`` over aspects, a ValueError (e.g. "N/A") skips the completion, ties skipped.
The fixture has 2 good records, 1 exact repeat, 1 truncated JSON line and 7 malformed ones, one per drop reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from mmalign.pairs.sources.vlfeedback import completion_score, vlfeedback_to_pairs
from mmalign.schema import PAIR_COLUMNS, read_pairs

FIXTURE = Path(__file__).parent / "fixtures" / "vlfeedback" / "vlfeedback_80k.jsonl"
GOOD_IMAGES = ["svit-conversation-1", "LLaVA-detail-2", "m3it-vqa-3", "llavar-5", "vlsafe-6", "comvint-9"]


@pytest.fixture
def merged_images(tmp_path):
    images = tmp_path / "merged_images"
    images.mkdir()
    for i, name in enumerate(GOOD_IMAGES):
        Image.new("RGB", (8, 6), (30 * i, 90, 160)).save(images / f"{name}.jpg", "JPEG")
    (images / "svit-8.jpg").write_bytes(b"\xff\xd8 not really a jpeg")  # undecodable; coco-7.jpg is missing
    return images


def run(tmp_path, images, max_drop_rate=0.9):
    out, man = tmp_path / "out" / "pairs.parquet", tmp_path / "out" / "manifest.json"
    return vlfeedback_to_pairs(FIXTURE, images, out, man, max_drop_rate), out, man


def test_score_is_the_mean_of_numeric_ratings():
    comp = {"annotations": {"A": {"Rating": "5"}, "B": {"Rating": "2"}}}
    assert completion_score(comp) == 3.5
    assert completion_score({"annotations": {"A": {"Rating": "N/A"}}}) is None
    assert completion_score({"annotations": {}}) is None


def test_best_against_worst_and_every_drop_counted(tmp_path, merged_images):
    manifest, out, man = run(tmp_path, merged_images)
    pairs = read_pairs(out)
    assert list(pairs.columns) == PAIR_COLUMNS
    assert manifest.rows_read == 11 and manifest.rows_kept == 2
    assert dict(manifest.dropped) == {
        "bad_json": 1,
        "missing_field": 1,
        "empty_prompt": 1,
        "tied_scores": 1,
        "chosen_equals_rejected": 1,
        "missing_image": 1,
        "bad_image": 1,
        "too_few_rated_responses": 1,
        "duplicate": 1,
    }
    assert manifest.rows_read == manifest.rows_kept + sum(manifest.dropped.values())
    first = pairs.set_index("id").loc["vlfeedback-svit-conversation-1"]
    assert first.chosen == "The man is holding a red umbrella." and first.rejected == "A dog."
    meta = json.loads(first.meta)
    assert (meta["chosen_model"], meta["rejected_model"]) == ("gpt-4v", "instructblip-vicuna-7b")
    second = pairs.set_index("id").loc["vlfeedback-LLaVA-detail-2"]
    assert second.prompt == "Describe the image in detail."  # the <image> placeholder is not part of the prompt
    assert second.rejected == "A bathroom with a bathtub."  # fuyu's "N/A"-rated completion is not ranked
    assert json.loads(man.read_text())["extra"]["completions_not_ranked"] == {
        "empty_response": 1,
        "no_numeric_rating": 2,
    }
    assert all(Path(p).is_file() for p in pairs.image)


def test_too_many_drops_fail_with_the_source_named(tmp_path, merged_images):
    with pytest.raises(ValueError, match=r"vlfeedback: dropped 81\.8% of 11 records"):
        run(tmp_path, merged_images, max_drop_rate=0.5)
    assert not (tmp_path / "out" / "pairs.parquet").exists()


def test_missing_image_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="merged_images.zip"):
        run(tmp_path, tmp_path / "nowhere")
