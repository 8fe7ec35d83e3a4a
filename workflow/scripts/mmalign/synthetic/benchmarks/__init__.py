"""The synthetic world as a benchmark source (``benchmarks.<name>.source: synthetic``, registered in
``mmalign.registry``): every benchmark kind's items built from the world's eval split, the prompt defaults that
fit the world's language, and the world's answer readers for the scorers that parse answers. Scoring itself is
the real benchmarks' own (``mmalign.evaluate.benchmarks``).
"""

from __future__ import annotations

from pathlib import Path

from mmalign.schema import Manifest, write_items

from ..world import load_scenes
from . import gqa, llavaw, mmhal, mmvet, objhal, pope, vqat

# kind -> synthetic_items(eval scenes, images dir, seed, training scenes); mmhalv asks mmhal's questions
ITEMS = {
    "pope": pope.synthetic_items,
    "objhal": objhal.synthetic_items,
    "mmhal": mmhal.synthetic_items,
    "mmhalv": mmhal.synthetic_items,
    "llavaw": llavaw.synthetic_items,
    "vqat": vqat.synthetic_items,
    "gqa": gqa.synthetic_items,
    "mmvet": mmvet.synthetic_items,
}
# kinds whose item count `items_scale` multiplies: past the eval split's size, a question-family benchmark uses the
# scenes again in turn, with another family; gqa and vqat (one family) stop at one item per scene
SCALABLE = ("mmhal", "mmhalv", "llavaw", "vqat", "gqa", "mmvet")
DEFAULTS = {"pope": pope.DEFAULTS}  # over the benchmark module's own DEFAULTS
READERS = {"objhal": objhal.WorldReader(), "vqat": vqat.WorldReader(), "gqa": gqa.WorldReader()}


def build_items(spec: dict, inputs: dict, items_path, images_dir, manifest_path, seed: int) -> int:
    """Write a benchmark's items (schema.ITEM_FIELDS) from the world's eval split; popular / adversarial POPE
    negatives and other statistics come from the SFT split."""
    Path(images_dir).mkdir(parents=True, exist_ok=True)
    scenes = load_scenes(inputs["scenes"])
    evaluation = [s for s in scenes if s.split == "eval"]
    training = [s for s in scenes if s.split == "sft"]
    scale = spec.get("items_scale", 1)
    if scale != 1 and spec["kind"] not in SCALABLE:
        raise ValueError(f"items_scale: {spec['kind']} has a fixed item count (scalable: {', '.join(SCALABLE)})")
    extra = {"scale": scale} if scale != 1 else {}
    items = ITEMS[spec["kind"]](evaluation, inputs["images"], seed, training, **extra)
    if spec.get("max_items"):
        items = items[: spec["max_items"]]
    manifest = Manifest(source=f"synthetic:{spec['kind']}", rows_read=len(items), rows_kept=len(items))
    manifest.write(manifest_path)
    return write_items(items, items_path)
