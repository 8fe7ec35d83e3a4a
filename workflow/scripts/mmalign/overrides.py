"""Derive a config from another by a small, explicit override file (e.g. the CPU rehearsal of config/paper.yaml).

An override is a YAML mapping applied to the base config:

* ``keep: {<section>: [names]}`` keeps only the named entries of a section (``variants``, ``sweeps``, ...); an
  entry it names must exist, so a renamed variant in the base config fails loudly instead of being dropped. The
  variants left out are added to ``report.not_run``: the tables show them as "not run", on purpose;
* every other key is merged into the base: mappings key by key, anything else (lists, scalars) replaced, and
  ``null`` removes the key.

Because the derivation runs on the base config as it is now, any change to the base is rehearsed with it.

    python -m mmalign.overrides config/paper.yaml config/rehearsal.yaml -o rehearsal.yaml
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import yaml


class OverrideError(ValueError):
    pass


def merge(base: dict, override: dict) -> dict:
    """``base`` with ``override`` merged in (both unchanged)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def keep_only(config: dict, keep: dict) -> dict:
    """Restrict each named section to the listed entries, in the base config's order."""
    kept = copy.deepcopy(config)
    for section, names in keep.items():
        entries = config.get(section) or {}
        unknown = sorted(set(names) - set(entries))
        if unknown:
            raise OverrideError(f"override key 'keep.{section}' names entries the config does not have: {unknown}")
        kept[section] = {name: spec for name, spec in entries.items() if name in set(names)}
        if section == "variants":
            left_out = [name for name in entries if name not in set(names)]
            report = kept.setdefault("report", {})
            report["not_run"] = list(dict.fromkeys([*(report.get("not_run") or []), *left_out]))
    return kept


def apply_override(base: dict, override: dict) -> dict:
    override = dict(override or {})
    keep = override.pop("keep", None) or {}
    if not isinstance(keep, dict):
        raise OverrideError("override key 'keep' must map a config section to the names it keeps")
    return merge(keep_only(base, keep), override)


def derive_file(base_path: str | Path, override_path: str | Path, out_path: str | Path) -> dict:
    base = yaml.safe_load(Path(base_path).read_text())
    override = yaml.safe_load(Path(override_path).read_text())
    derived = apply_override(base, override)
    header = f"# derived from {base_path} by {override_path} (mmalign.overrides); do not edit, edit those\n"
    Path(out_path).write_text(header + yaml.safe_dump(derived, sort_keys=False))
    return derived


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Apply an override file to a config")
    parser.add_argument("base")
    parser.add_argument("override")
    parser.add_argument("-o", "--out", required=True)
    args = parser.parse_args(argv)
    derive_file(args.base, args.override, args.out)


if __name__ == "__main__":
    main()
