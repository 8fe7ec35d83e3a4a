"""Build one configured pair set (config ``pairsets.<name>``) into the common preference schema: dispatch by kind.

* ``povid`` / ``vlfeedback`` / ``rlhfv``: the real data sets (``sources/``);
* ``subsample`` / ``corrupted``: made from another pair set (``derived``);
* ``bdhs``: BDHS rejected answers from the base model (``pairs.bdhs``, rule build_bdhs_pairs);
* the kinds of ``mmalign.registry.PAIRSET_KINDS``: the synthetic world's analogs.
"""

from __future__ import annotations

from pathlib import Path

from mmalign import registry
from mmalign.schema import DEFAULT_MAX_DROP_RATE, Manifest

from .corrupt import make_corrupter
from .derived import corrupted, subsample

DERIVED_KINDS = ("subsample", "corrupted")  # made from another pair set (`source`)
# kind -> the rule of workflow/rules/pairs.smk that builds it; every other kind is built by build_pairs
RULES = {
    "bdhs": "build_bdhs_pairs",
    "rlhfv": "build_pairs_with_images",
    "vlfeedback_analog": "build_analog_pairs",
    "rlhfv_analog": "build_analog_pairs",
}


def records_file(inputs: dict, spec: dict, name: str) -> Path:
    """The snapshot's records file the config names; a missing one fails listing the files that are there."""
    snapshot = Path(inputs["snapshot"])
    path = snapshot / spec["records_file"]
    if not path.is_file():
        present = sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*.json*") if p.is_file())
        raise FileNotFoundError(
            f"pair set {name!r}: records_file {spec['records_file']!r} is not in {snapshot} (there: {present[:10]})"
        )
    return path


def build_pairset(
    spec: dict,
    inputs: dict,
    pairs_path,
    manifest_path,
    seed: int,
    world_config: dict | None,
    name: str = "",
    outputs: dict | None = None,
) -> Manifest:
    kind = spec["kind"]
    bound = float(spec.get("max_drop_rate", DEFAULT_MAX_DROP_RATE))
    if kind == "povid":
        from .sources.povid import povid_to_pairs

        images = Path(inputs["images"]) / spec.get("images_subdir", "")
        return povid_to_pairs(records_file(inputs, spec, name), images, Path(pairs_path), Path(manifest_path), bound)
    if kind == "vlfeedback":
        from .sources.vlfeedback import vlfeedback_to_pairs

        images = Path(inputs["images"]) / spec.get("images_subdir", "")
        return vlfeedback_to_pairs(
            records_file(inputs, spec, name), images, Path(pairs_path), Path(manifest_path), bound
        )
    if kind == "rlhfv":
        from .sources.rlhfv import rlhfv_to_pairs

        return rlhfv_to_pairs(
            Path(inputs["snapshot"]), Path((outputs or {})["images"]), Path(pairs_path), Path(manifest_path), bound
        )
    if kind == "subsample":
        return subsample(spec, inputs["source"], pairs_path, manifest_path, seed, inputs.get("prompts"), name)
    if kind == "corrupted":
        if not spec.get("corrupter"):
            raise ValueError(
                f"pair set {name!r}: kind corrupted needs a corrupter ({{kind: llm, ...}} or a "
                f"registered kind: {sorted(registry.CORRUPTER_KINDS)})"
            )
        corrupter = make_corrupter(spec["corrupter"], seed, inputs.get("scenes"), world_config)
        return corrupted(
            spec, inputs["source"], pairs_path, manifest_path, corrupter, seed, inputs.get("prompts"), name
        )
    if kind in registry.PAIRSET_KINDS:
        return registry.load(registry.PAIRSET_KINDS[kind]).build_pairset(
            spec, inputs, pairs_path, manifest_path, seed, world_config
        )
    raise ValueError(f"unknown pair set kind {kind!r}")
