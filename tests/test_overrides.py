"""Deriving a config from another by an override file (how the CPU rehearsal is made from config/paper.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mmalign.overrides import OverrideError, apply_override, derive_file

BASE = {
    "seed": 0,
    "downloads": {"povid": {"repo_id": "org/povid", "revision": "a" * 40, "allow_patterns": ["*.json"]}},
    "variants": {"dpo": {"pairset": "povid"}, "ipo": {"pairset": "povid", "beta": 0.9}, "slic": {"pairset": "povid"}},
    "sweeps": {"dpo": {"variant": "dpo", "grid": {"beta": [0.1, 0.2]}}},
}


def test_keep_restricts_sections_and_merge_changes_only_what_it_names():
    derived = apply_override(
        BASE,
        {
            "keep": {"variants": ["slic", "dpo"], "sweeps": []},
            "downloads": {"povid": {"mirror": "mirrors/povid", "allow_patterns": ["*.json", "README.md"]}},
            "variants": {"dpo": {"epochs": 1}},
        },
    )
    assert list(derived["variants"]) == ["dpo", "slic"]  # the base config's order
    assert derived["variants"]["dpo"] == {"pairset": "povid", "epochs": 1}
    assert derived["sweeps"] == {}
    povid = derived["downloads"]["povid"]
    assert povid == {"repo_id": "org/povid", "revision": "a" * 40, "allow_patterns": ["*.json", "README.md"]} | {
        "mirror": "mirrors/povid"
    }
    assert BASE["variants"]["dpo"] == {"pairset": "povid"}  # the base is left alone


def test_null_removes_a_key():
    assert "revision" not in apply_override(BASE, {"downloads": {"povid": {"revision": None}}})["downloads"]["povid"]


def test_keeping_a_name_the_base_lacks_fails_naming_it():
    with pytest.raises(OverrideError, match=r"keep.variants.*\['dpo_renamed'\]"):
        apply_override(BASE, {"keep": {"variants": ["dpo", "dpo_renamed"]}})


def test_derive_file_writes_a_config_snakemake_reads(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    (tmp_path / "over.yaml").write_text(yaml.safe_dump({"keep": {"variants": ["ipo"]}}))
    derive_file(tmp_path / "base.yaml", tmp_path / "over.yaml", tmp_path / "out.yaml")
    text = (tmp_path / "out.yaml").read_text()
    assert text.startswith("# derived from") and list(yaml.safe_load(text)["variants"]) == ["ipo"]


def test_the_rehearsal_override_applies_to_paper_yaml():
    repo = Path(__file__).resolve().parents[1]
    paper = yaml.safe_load((repo / "config" / "paper.yaml").read_text())
    derived = apply_override(paper, yaml.safe_load((repo / "config" / "rehearsal.yaml").read_text()))
    assert all(d.get("mirror") for d in derived["downloads"].values())  # nothing is fetched from the Hub
    assert set(derived["benchmarks"]) == set(paper["benchmarks"])  # every benchmark, as paper.yaml defines it
    assert {v.get("method", "dpo") for v in derived["variants"].values()} >= {
        "dpo",
        "online_dpo",
        "mixed_dpo",
        "online_bdhs",
        "image_distortion",
    }
