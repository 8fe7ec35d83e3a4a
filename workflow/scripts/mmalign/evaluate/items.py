"""One benchmark's items in the common schema (``mmalign.schema.ITEM_FIELDS``), by its ``source``: read from a
downloaded Hub snapshot (``source: download``), or built by a registered source (``mmalign.registry``: the
synthetic world)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from mmalign import registry

from .pope_snapshot import pope_to_items
from .snapshots import LOADERS, benchmark_to_items


def source_module(spec: dict) -> ModuleType | None:
    """The registered module of a benchmark's source, None for downloaded items."""
    name = registry.BENCHMARK_SOURCES.get(spec["source"])
    return registry.load(name) if name else None


def build_items(spec: dict, inputs: dict, items_path, images_dir, manifest_path, seed: int) -> int:
    source = source_module(spec)
    if source is not None:
        return source.build_items(spec, inputs, items_path, images_dir, manifest_path, seed)
    Path(images_dir).mkdir(parents=True, exist_ok=True)
    snapshot = Path(inputs["snapshot"])
    if spec["kind"] == "pope":
        return pope_to_items(snapshot, Path(items_path), Path(images_dir), Path(manifest_path)).rows_kept
    if spec["kind"] in LOADERS:
        return benchmark_to_items(
            spec["kind"], snapshot, Path(items_path), Path(images_dir), Path(manifest_path), inputs.get("annotations")
        ).rows_kept
    raise ValueError(f"benchmark kind {spec['kind']!r} has no loader for downloaded data yet")
