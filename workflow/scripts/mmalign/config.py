"""Config checks that run when the workflow loads, before any job: schema errors and dangling names,
each reported with the dotted key that is wrong (e.g. ``variants.dpo_povid.lerning_rate``)."""

from __future__ import annotations

from pathlib import Path

import yaml


class ConfigError(ValueError):
    pass


def expand_sweeps(config: dict) -> None:
    """Add one variant per point of each ``sweeps.<name>`` grid, in place: the point's values over a copy of
    the sweep's ``variant``, named ``<name>_<key><value>...`` (e.g. ``dpo_povid_beta0.05``). The paper reports
    only its search grids (Appendix A); a sweep reruns one, every point an ordinary, cached variant."""
    import itertools

    for sweep_name, sweep in (config.get("sweeps") or {}).items():
        if not isinstance(sweep, dict) or not isinstance(sweep.get("grid"), dict):
            continue  # the schema names what is wrong
        template = (config.get("variants") or {}).get(sweep.get("variant"))
        if template is None:
            raise ConfigError(f"config key 'sweeps.{sweep_name}.variant': no variant named {sweep.get('variant')!r}")
        keys = list(sweep["grid"])
        for values in itertools.product(*(sweep["grid"][k] for k in keys)):
            name = sweep_name + "".join(f"_{k}{v}" for k, v in zip(keys, values))
            if name in config["variants"]:
                raise ConfigError(f"config key 'sweeps.{sweep_name}': variant {name!r} already exists")
            config["variants"][name] = {**template, **dict(zip(keys, values))}


def apply_defaults(config: dict) -> None:
    """Fill every variant from ``variant_defaults`` and every pair set from ``pairset_defaults[<its kind>]``,
    in place; a key set on the entry itself wins. This keeps a sweep of many variants short in the config,
    and since the merged settings reach jobs through params, editing a default reruns every entry using it."""
    variant_defaults = config.get("variant_defaults") or {}
    for name, variant in (config.get("variants") or {}).items():
        if isinstance(variant, dict):
            config["variants"][name] = {**variant_defaults, **variant}
    pairset_defaults = config.get("pairset_defaults") or {}
    for name, spec in (config.get("pairsets") or {}).items():
        if isinstance(spec, dict) and spec.get("kind") in pairset_defaults:
            config["pairsets"][name] = {**pairset_defaults[spec["kind"]], **spec}


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def validate_config(config: dict, schema_path: str | Path) -> None:
    """Validate against the JSON schema; raise ConfigError naming every offending key."""
    from jsonschema import Draft202012Validator

    schema = yaml.safe_load(Path(schema_path).read_text())
    errors = sorted(Draft202012Validator(schema).iter_errors(config), key=lambda e: list(map(str, e.path)))
    if not errors:
        return
    lines = []
    for err in errors:
        if err.validator == "additionalProperties":
            unknown = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            for name in unknown:
                lines.append(f"config key '{_key([*err.path, name])}': unknown key (misspelled?)")
        elif err.validator == "propertyNames":
            lines.append(f"config key '{_key([*err.path, err.instance])}': name not allowed ({err.message})")
        else:
            lines.append(f"config key '{_key(err.path)}': {err.message}")
    raise ConfigError("invalid configuration:\n  " + "\n  ".join(dict.fromkeys(lines)))


def check_references(config: dict) -> None:
    """Names that point at other config entries must exist."""
    problems = []
    pairsets, benchmarks, downloads = config["pairsets"], config["benchmarks"], config.get("downloads", {})
    for name, variant in config["variants"].items():
        if variant["pairset"] not in pairsets:
            problems.append(f"config key 'variants.{name}.pairset': no pair set named {variant['pairset']!r}")
    for name, spec in pairsets.items():
        if spec["kind"] == "povid_analog" and "world" not in config:
            problems.append(f"config key 'pairsets.{name}.kind': povid_analog needs a 'world' section")
        for ref in ("download", "images"):
            if spec["kind"] in ("povid", "vlfeedback") and spec.get(ref) not in downloads:
                problems.append(f"config key 'pairsets.{name}.{ref}': no downloads entry named {spec.get(ref)!r}")
        if spec["kind"] == "bdhs":
            source = spec.get("source")
            if source not in pairsets or pairsets[source]["kind"] == "bdhs":
                problems.append(f"config key 'pairsets.{name}.source': needs a non-BDHS pair set, got {source!r}")
    problems += _dataset_references(config)
    for name, variant in config["variants"].items():
        wants_policy = variant.get("rejected", "external") != "external"
        if wants_policy and variant.get("method", "dpo") in ("online_bdhs", "image_distortion"):
            continue
        if wants_policy and pairsets.get(variant["pairset"], {}).get("kind") != "bdhs":
            problems.append(f"config key 'variants.{name}.rejected': a policy-derived rejected answer needs a bdhs pair set")
    judges = config.get("judges", {})
    for name, variant in config["variants"].items():
        method, annotator = variant.get("method", "dpo"), variant.get("annotator")
        if method in ("online_dpo", "mixed_dpo") and annotator not in judges:
            problems.append(f"config key 'variants.{name}.annotator': {method} needs a judges entry, got {annotator!r}")
        if method in ("online_bdhs", "image_distortion") and variant.get("rejected", "external") == "external":
            problems.append(f"config key 'variants.{name}.rejected': {method} trains on a policy-derived rejected "
                            "answer: use 'policy' (it alone) or 'both' (with the pair set's rejected answer, Avg-DPO)")
    for name, spec in benchmarks.items():
        if spec.get("annotations") and spec["annotations"] not in downloads:
            problems.append(f"config key 'benchmarks.{name}.annotations': no downloads entry named {spec['annotations']!r}")
        if spec["source"] == "download" and spec.get("download") not in downloads:
            problems.append(f"config key 'benchmarks.{name}.download': no downloads entry named {spec.get('download')!r}")
        if spec["source"] == "synthetic" and "world" not in config:
            problems.append(f"config key 'benchmarks.{name}.source': synthetic benchmarks need a 'world' section")
    problems += judge_reference_problems(config)
    base = config["base_model"]
    if "build" in base and "world" not in config:
        problems.append("config key 'base_model.build': building the tiny model needs a 'world' section")
    if "download" in base and base["download"] not in downloads:
        problems.append(f"config key 'base_model.download': no downloads entry named {base['download']!r}")
    figure = config["report"]["pope_figure"]["benchmark"]
    if figure not in benchmarks:
        problems.append(f"config key 'report.pope_figure.benchmark': no benchmark named {figure!r}")
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


def judge_reference_problems(config: dict) -> list[str]:
    """Judged benchmarks name an existing judge; a local judge model names an existing download."""
    from .benchmarks import REGISTRY

    judged_kinds = [kind for kind, module in REGISTRY.items() if getattr(module, "JUDGED", False)]
    problems = []
    judges, downloads = config.get("judges", {}), config.get("downloads", {})
    for name, spec in config["benchmarks"].items():
        judge = spec.get("judge")
        if spec["kind"] in judged_kinds and judge is None:
            problems.append(f"config key 'benchmarks.{name}.judge': kind {spec['kind']} is scored by a judge; name one")
        elif judge is not None and judge not in judges:
            problems.append(f"config key 'benchmarks.{name}.judge': no judges entry named {judge!r}")
    for name, spec in judges.items():
        if spec.get("download") and spec["download"] not in downloads:
            problems.append(f"config key 'judges.{name}.download': no downloads entry named {spec['download']!r}")
    return problems


DERIVED_KINDS = ("subsample", "corrupted")  # pair sets made from another pair set
WORLD_KINDS = ("vlfeedback_analog", "rlhfv_analog")


def _dataset_references(config: dict) -> list[str]:
    """Issue-5 pair sets: sources exist and form no cycle, prompt sets exist, analogs have a world."""
    problems = []
    pairsets, downloads = config["pairsets"], config.get("downloads", {})
    for name, spec in pairsets.items():
        kind = spec["kind"]
        if kind in WORLD_KINDS and "world" not in config:
            problems.append(f"config key 'pairsets.{name}.kind': {kind} needs a 'world' section")
        if kind == "rlhfv" and spec.get("download") not in downloads:
            problems.append(f"config key 'pairsets.{name}.download': no downloads entry named {spec.get('download')!r}")
        if kind in DERIVED_KINDS:
            if spec.get("source") not in pairsets:
                problems.append(f"config key 'pairsets.{name}.source': no pair set named {spec.get('source')!r}")
            elif _has_cycle(name, pairsets):
                problems.append(f"config key 'pairsets.{name}.source': pair sets derive from each other in a cycle")
            if "prompts_from" in spec and spec["prompts_from"] not in pairsets:
                problems.append(f"config key 'pairsets.{name}.prompts_from': no pair set named {spec['prompts_from']!r}")
        if kind == "corrupted" and (spec.get("corrupter") or {}).get("kind", "prior") == "prior" and "world" not in config:
            problems.append(f"config key 'pairsets.{name}.corrupter.kind': the prior corrupter needs a 'world' section")
    return problems


def _has_cycle(start: str, pairsets: dict) -> bool:
    seen, name = set(), start
    while name in pairsets and pairsets[name]["kind"] in DERIVED_KINDS + ("bdhs",):
        if name in seen:
            return True
        seen.add(name)
        name = pairsets[name].get("source")
    return False
