"""The POVID analog pair set and the common preference schema."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from mmalign.pairs.build import build_pairset
from mmalign.schema import PAIR_COLUMNS, Manifest, check_drop_rate, write_pairs
from mmalign.synthetic import language as lang
from mmalign.synthetic.povid_analog import PovidAnalogSettings, povid_analog
from mmalign.synthetic.world import load_scenes


def test_povid_analog_pairs_in_schema(small_world, tmp_path):
    settings, scenes_path, images = small_world
    manifest = build_pairset(
        {"kind": "povid_analog", "questions_per_scene": 2},
        {"scenes": scenes_path, "images": images},
        tmp_path / "pairs.parquet",
        tmp_path / "manifest.json",
        seed=0,
        world_config={"seed": 3},
    )
    frame = pd.read_parquet(tmp_path / "pairs.parquet")
    assert list(frame.columns) == PAIR_COLUMNS
    assert len(frame) == manifest.rows_kept > 0
    assert (frame.chosen != frame.rejected).all()
    assert frame.id.is_unique
    written = json.loads((tmp_path / "manifest.json").read_text())
    assert written["rows_read"] == written["rows_kept"] + sum(written["dropped"].values())
    # chosen answers are the truth; rejected ones state at least one false fact about the scene
    scenes = {s.id: s for s in load_scenes(scenes_path)}
    for row in frame.itertuples():
        scene = scenes[json.loads(row.meta)["scene"]]
        assert all(lang.check_claim(c, scene) in (True, None) for c in lang.parse(row.chosen))
    families = {json.loads(m)["family"] for m in frame.meta}
    assert {"description", "existence"} <= families


def test_missing_image_is_dropped_and_counted(small_world, tmp_path):
    settings, scenes_path, images = small_world
    copy = tmp_path / "images"
    shutil.copytree(images, copy)
    scenes = load_scenes(scenes_path, "preference")
    (copy / f"{scenes[0].id}.png").unlink()
    rows, manifest = povid_analog(scenes, copy, settings, PovidAnalogSettings(questions_per_scene=1))
    assert manifest.dropped["missing_image"] == 3  # a description, an existence and another question
    assert manifest.rows_kept == len(rows) == manifest.rows_read - sum(manifest.dropped.values())
    assert all(scenes[0].id not in r["image"] for r in rows)


def test_drop_rate_bound_fails_with_a_message():
    manifest = Manifest(source="povid", rows_read=10, rows_kept=7)
    manifest.dropped.update({"empty_answer": 3})
    with pytest.raises(ValueError, match="povid.*30.0%"):
        check_drop_rate(manifest, 0.1)
    check_drop_rate(manifest, 0.5)


def test_duplicate_pair_ids_are_refused(tmp_path):
    row = {"id": "a", "image": "x", "prompt": "p", "chosen": "c", "rejected": "r", "source": "s", "meta": {}}
    with pytest.raises(ValueError, match="duplicate"):
        write_pairs([row, row], tmp_path / "p.parquet")
