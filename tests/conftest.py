"""Shared fixtures: a small world on disk and a tiny base model, built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network

from mmalign.synthetic.world import WorldSettings, write_world

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def small_world(tmp_path_factory):
    """A rendered world with small splits: (settings, scenes_path, images_dir)."""
    root = tmp_path_factory.mktemp("world")
    settings = WorldSettings(seed=3, split_sizes={"sft": 120, "preference": 40, "eval": 20})
    write_world(settings, root / "scenes.jsonl", root / "images")
    return settings, root / "scenes.jsonl", root / "images"


@pytest.fixture(scope="session")
def tiny_model(small_world, tmp_path_factory):
    """A tiny LLaVA built and briefly SFT-trained on the small world: its model directory."""
    from mmalign.synthetic.tinyllava import TinyLlavaSettings, build_base_model
    from mmalign.synthetic.world import load_scenes

    settings, scenes_path, images = small_world
    out = tmp_path_factory.mktemp("model") / "tinyllava"
    build = TinyLlavaSettings(
        vision_hidden=32, text_hidden=32, vision_pretrain_steps=5, sft_scenes=40, sft_epochs=1, sft_batch_size=16
    )
    metrics = build_base_model(settings, build, load_scenes(scenes_path, "sft"), images, out)
    return out, metrics


@pytest.fixture(scope="session")
def pairs(small_world, tmp_path_factory):
    """The POVID analog's pairs on the small world (read-only: tests that train on it share it)."""
    from mmalign.pairs.build import build_pairset

    _, scenes_path, images = small_world
    out = tmp_path_factory.mktemp("pairs")
    build_pairset(
        {"kind": "povid_analog"},
        {"scenes": scenes_path, "images": images},
        out / "pairs.parquet",
        out / "manifest.json",
        seed=0,
        world_config={"seed": 3},
    )
    return out / "pairs.parquet"
