"""Config checks that run when the workflow loads, before any job: schema errors and dangling names,
each reported with the dotted key that is wrong (e.g. ``variants.dpo_povid.lerning_rate``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mmalign import registry
from mmalign.pairs.build import DERIVED_KINDS, RULES
from mmalign.train import methods


class ConfigError(ValueError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error (YAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise ConfigError(
                    f"{self.name}:{line}: duplicate key {key!r} (first at line {seen[key]}); YAML would keep the last"
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def check_yaml_file(path: str | Path) -> dict:
    """A config file read strictly: a syntax error or a duplicate key fails naming the file and line."""
    text = Path(path).read_text()
    loader = _UniqueKeyLoader(text)
    loader.name = str(path)
    try:
        return loader.get_single_data() or {}
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: {err.problem or err.context}") from None
    finally:
        loader.dispose()


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


REPLICATE = "{variant}/seed{k}"


def replicate_groups(config: dict) -> dict[str, list[str]]:
    """``replicates``: {variant: its seed runs} for the variants run with several training seeds (``seeds``:
    how many; ``variants``: ``all`` or a list). Runs are named ``<variant>/seed<k>``, k = 0..seeds-1."""
    section = config.get("replicates") or {}
    seeds = int(section.get("seeds", 1))
    if seeds < 2:
        return {}
    chosen = section.get("variants", "all")
    names = list(config["variants"]) if chosen == "all" else list(chosen)
    return {name: [REPLICATE.format(variant=name, k=k) for k in range(seeds)] for name in names}


def expand_replicates(config: dict) -> dict[str, list[str]]:
    """Replace each replicated variant by its seed runs, in place, after the config is checked: run k trains
    with the variant's seed + k (run 0 computes exactly what the variant alone would), each its own target.
    Returns the groups; tables, figures and claims read a group's mean over its seeds under the variant's name."""
    groups = replicate_groups(config)
    unknown = [name for name in groups if name not in config["variants"]]
    if unknown:
        raise ConfigError(f"config key 'replicates.variants': no variants named {unknown}")
    for name, runs in groups.items():
        template = config["variants"].pop(name)
        for k, run in enumerate(runs):
            config["variants"][run] = {**template, "seed": template.get("seed", config["seed"]) + k}
    return groups


# Pair-set rules whose jobs generate with the base model (mmalign.pairs.build.RULES): their pairs change with it.
RULES_READING_THE_BASE_MODEL = ("build_bdhs_pairs", "build_analog_pairs")
BASE_REPLICATE_MODEL = "{model}-seed{k}"  # base model k >= 1: resources/models/<model>-seed<k>
BASE_REPLICATE_PAIRSET = "{pairset}/seed{k}"  # a pair set made with base model k >= 1
BASE_REPLICATES = "base"  # the base model's own evaluations: base/seed0..seed<n-1>


def base_replicate_runs(seeds: int) -> list[str]:
    """The base model's replicate runs, as the workflow names them: ``base/seed0`` .. ``base/seed<seeds-1>``."""
    return [REPLICATE.format(variant=BASE_REPLICATES, k=k) for k in range(seeds)]


def _depends_on_base_model(config: dict, pairset: str) -> bool:
    """Whether a pair set's pairs are generated with the base model, itself or through its sources."""
    spec = config["pairsets"][pairset]
    if RULES.get(spec["kind"]) in RULES_READING_THE_BASE_MODEL:
        return True
    sources = [spec.get(key) for key in ("source", "prompts_from")] if spec["kind"] in DERIVED_KINDS else []
    return any(source and _depends_on_base_model(config, source) for source in sources)


def _replicate_pairset(config: dict, pairset: str, k: int, made: dict[str, int]) -> str:
    """The pair set as built with base model k: itself when its pairs do not depend on the base model, else a copy
    named ``<pairset>/seed<k>`` whose base-dependent sources are replaced by their own copies (added to config)."""
    if k == 0 or not _depends_on_base_model(config, pairset):
        return pairset
    name = BASE_REPLICATE_PAIRSET.format(pairset=pairset, k=k)
    if name not in config["pairsets"]:
        spec = dict(config["pairsets"][pairset])
        for key in ("source", "prompts_from"):
            if spec.get(key):
                spec[key] = _replicate_pairset(config, spec[key], k, made)
        config["pairsets"][name] = spec
        made[name] = k
    return name


@dataclass
class BaseSeeds:
    """Which base model each run and pair set uses: its seed k (model ``<model>-seed<k>``); absent means 0."""

    runs: dict[str, int] = field(default_factory=dict)  # variant seed runs, and base/seed<k>
    pairsets: dict[str, int] = field(default_factory=dict)  # the pair sets added for base model k

    def model(self, name: str, k: int) -> str:
        return BASE_REPLICATE_MODEL.format(model=name, k=k) if k else name

    def of_run(self, run: str) -> int:
        return self.runs.get(run, 0)

    def of_pairset(self, pairset: str) -> int:
        return self.pairsets.get(pairset, 0)

    def models(self, name: str) -> list[str]:
        """The base model and its replicates, k = 0 first."""
        return [self.model(name, k) for k in sorted({0, *self.runs.values()})]


def expand_base_replicates(config: dict, groups: dict[str, list[str]]) -> BaseSeeds:
    """``replicates.base_model``: replicate k of every replicated variant starts from its own base model, built
    with the study's seed + k, as it trains with the variant's seed + k; the pair sets the base model generates
    (BDHS, the VLFeedback / RLHF-V analogs, and sets derived from them) are rebuilt with it. Run 0 is unchanged.
    The base model's own evaluations become the group ``base`` (runs ``base/seed<k>``), added to ``groups``; with
    ``replicates.variants: []`` it is the only group, a study of the base-model build's seeds alone.

    Edits config in place (each run's ``pairset``; the added pair sets) and returns the base seed of every run and
    pair set whose seed is not 0 (the rest use the base model itself). A base model that is downloaded has no build
    seed, so asking for its replicates is an error naming the key."""
    section = config.get("replicates") or {}
    if not section.get("base_model"):
        return BaseSeeds()
    if "build" not in config["base_model"]:
        raise ConfigError(
            "config key 'replicates.base_model': only a built base model (base_model.build) has seeds; "
            "a downloaded one is the same model every time"
        )
    count = int(section.get("seeds", 1))
    if count < 2:
        raise ConfigError("config key 'replicates.base_model': needs replicates.seeds of 2 or more")
    seeds = BaseSeeds()
    for runs in groups.values():
        for k, run in enumerate(runs[1:], start=1):
            spec = config["variants"][run]
            spec["pairset"] = _replicate_pairset(config, spec["pairset"], k, seeds.pairsets)
            seeds.runs[run] = k
    groups[BASE_REPLICATES] = base_replicate_runs(count)
    seeds.runs.update({run: k for k, run in enumerate(groups[BASE_REPLICATES]) if k})
    return seeds


def apply_defaults(config: dict) -> None:
    """Fill every variant from ``variant_defaults`` and every pair set from ``pairset_defaults[<its kind>]``,
    in place; a key set on the entry itself wins. This keeps a sweep of many variants short in the config,
    and since the merged settings reach jobs through params, editing a default reruns every entry using it."""
    variant_defaults = config.get("variant_defaults") or {}
    for name, variant in (config.get("variants") or {}).items():
        if isinstance(variant, dict):
            config["variants"][name] = {**variant_defaults, **variant}
    reward_model_defaults = config.get("reward_model_defaults") or {}
    for name, spec in (config.get("reward_models") or {}).items():
        if isinstance(spec, dict):
            config["reward_models"][name] = {**reward_model_defaults, **spec}
    pairset_defaults = config.get("pairset_defaults") or {}
    for name, spec in (config.get("pairsets") or {}).items():
        if isinstance(spec, dict) and spec.get("kind") in pairset_defaults:
            config["pairsets"][name] = {**pairset_defaults[spec["kind"]], **spec}


def trigger_spec(spec: dict) -> dict:
    """What of a variant entry reaches Snakemake's params of its ``spec.json`` (a change reruns the run): an RL
    variant's resolved settings, because the DPO keys it inherits from variant_defaults do not apply to it (editing
    them must not retrain it); any other variant's entry as written (the library resolves its defaults, and their
    code is in the rule's code version). Here, not in ``mmalign.train.settings``: no job runs this module, so
    editing it reruns nothing."""
    from mmalign.train.settings import DPOSettings, resolved_spec

    if methods.get(spec.get("method", DPOSettings.method)).reward_model:
        return resolved_spec(spec)
    return spec


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def load_schema(schema_path: str | Path) -> dict:
    """The config schema, with the lists that live in the library filled in: the training methods (and their
    descriptions) and the rejected-answer choices, from ``mmalign.train.methods``."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    variant = schema["$defs"]["variant"]["properties"]
    variant["method"].update(enum=list(methods.METHODS), description=methods.schema_description())
    variant["rejected"]["enum"] = list(methods.REJECTED)
    return schema


def validate_config(config: dict, schema_path: str | Path) -> None:
    """Validate against the JSON schema; raise ConfigError naming every offending key."""
    from jsonschema import Draft202012Validator

    schema = load_schema(schema_path)
    errors = sorted(Draft202012Validator(schema).iter_errors(config), key=lambda e: list(map(str, e.path)))
    if not errors:
        return
    lines = []
    for err in errors:
        if err.validator == "additionalProperties":
            unknown = sorted(
                k for k in set(err.instance) - set(err.schema.get("properties", {})) if not k.startswith("x-")
            )
            for name in unknown:
                lines.append(f"config key '{_key([*err.path, name])}': unknown key (misspelled?)")
        elif err.validator == "propertyNames":
            lines.append(f"config key '{_key([*err.path, err.instance])}': name not allowed ({err.message})")
        else:
            lines.append(f"config key '{_key(err.path)}': {err.message}")
    raise ConfigError("invalid configuration:\n  " + "\n  ".join(dict.fromkeys(lines)))


def check_references(config: dict) -> None:
    """Names that point at other config entries must exist; what a method or kind needs must be there."""
    problems = [
        *_variant_problems(config),
        *_pairset_problems(config),
        *_benchmark_problems(config),
        *_judge_problems(config),
        *_report_problems(config),
        *_reward_problems(config),
    ]
    downloads = config.get("downloads", {})
    base = config["base_model"]
    if "build" in base and "world" not in config:
        problems.append("config key 'base_model.build': building the tiny model needs a 'world' section")
    if "download" in base and base["download"] not in downloads:
        problems.append(f"config key 'base_model.download': no downloads entry named {base['download']!r}")
    figure = config["report"]["pope_figure"]["benchmark"]
    if figure not in config["benchmarks"]:
        problems.append(f"config key 'report.pope_figure.benchmark': no benchmark named {figure!r}")
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


def _variant_problems(config: dict) -> list[str]:
    """A variant's pair set exists; its method gets the annotator and the rejected answer it needs."""
    problems = []
    pairsets, judges = config["pairsets"], config.get("judges", {})
    if not config["variants"]:
        problems.append("config key 'variants': no variant to train (a study of the base model alone is not one)")
    for name, variant in config["variants"].items():
        weights, losses = variant.get("loss_weights"), variant.get("loss_type") or ["sigmoid"]
        if weights is not None and len(weights) != len(losses):
            problems.append(
                f"config key 'variants.{name}.loss_weights': {len(weights)} weights for {len(losses)} loss types "
                f"{losses}: give one weight per loss"
            )
        if variant["pairset"] not in pairsets:
            problems.append(f"config key 'variants.{name}.pairset': no pair set named {variant['pairset']!r}")
        problems += _micro_batch_problems(f"variants.{name}", variant)
        method = methods.get(variant["method"])
        rejected = variant.get("rejected", methods.DEFAULT_REJECTED)
        reward_models = config.get("reward_models") or {}
        if method.reward_model and variant.get("reward_model") not in reward_models:
            problems.append(
                f"config key 'variants.{name}.reward_model': {method.name} needs a reward_models entry, "
                f"got {variant.get('reward_model')!r}"
            )
        if not method.reward_model and ("reward_model" in variant or "rl" in variant):
            problems.append(f"config key 'variants.{name}': reward_model and rl are settings of rloo / ppo only")
        if method.reward_model:
            problems += _rl_problems(name, variant)
        if method.annotator and variant.get("annotator") not in judges:
            problems.append(
                f"config key 'variants.{name}.annotator': {method.name} needs a judges entry, "
                f"got {variant.get('annotator')!r}"
            )
        batching = variant.get("batching", "random")
        if batching != "random" and not (method.precomputed_reference or method.reward_model):  # RL: DPO keys unread
            problems.append(
                f"config key 'variants.{name}.batching': {batching} groups fixed pair rows by length; "
                f"{method.name} makes or changes its rows while training: use 'random' (set in variant_defaults, "
                "give this variant its own)"
            )
        if method.policy_rejected and rejected == methods.DEFAULT_REJECTED:
            problems.append(
                f"config key 'variants.{name}.rejected': {method.name} trains on a policy-derived "
                "rejected answer: use 'policy' (it alone) or 'both' (with the pair set's rejected "
                "answer, Avg-DPO)"
            )
        elif (
            rejected != methods.DEFAULT_REJECTED
            and not method.policy_rejected
            and pairsets.get(variant["pairset"], {}).get("kind") != "bdhs"
        ):
            problems.append(
                f"config key 'variants.{name}.rejected': a policy-derived rejected answer needs a bdhs pair set"
            )
    return problems


def _micro_batch_problems(key: str, spec: dict) -> list[str]:
    """``per_device_batch_size`` must divide ``batch_size``: gradient accumulation then reaches the global batch
    on one process. Whether it also splits over a job's processes is checked when the job starts (the process
    count is the job's resources, not the study's config)."""
    from mmalign.compute import ComputeError, micro_batches

    per_device = spec.get("per_device_batch_size")
    if per_device is None or "batch_size" not in spec:
        return []
    try:
        micro_batches(spec["batch_size"], per_device, 1, key=f"{key}.per_device_batch_size")
    except ComputeError as err:
        named, _, message = str(err).partition(": ")
        return [f"config key '{named}': {message}"]
    return []


DOWNLOAD_KINDS = {"povid": ("download", "images"), "vlfeedback": ("download", "images"), "rlhfv": ("download",)}


def _pairset_problems(config: dict) -> list[str]:
    """Sources and downloads exist and derived pair sets form no cycle; the world's kinds have a world."""
    problems = []
    pairsets, downloads = config["pairsets"], config.get("downloads", {})
    for name, spec in pairsets.items():
        kind = spec["kind"]
        if kind in registry.PAIRSET_KINDS and "world" not in config:
            problems.append(f"config key 'pairsets.{name}.kind': {kind} needs a 'world' section")
        for ref in DOWNLOAD_KINDS.get(kind, ()):
            if spec.get(ref) not in downloads:
                problems.append(f"config key 'pairsets.{name}.{ref}': no downloads entry named {spec.get(ref)!r}")
        if kind == "bdhs":
            source = spec.get("source")
            if source not in pairsets or pairsets[source]["kind"] == "bdhs":
                problems.append(f"config key 'pairsets.{name}.source': needs a non-BDHS pair set, got {source!r}")
        if kind in DERIVED_KINDS:
            if spec.get("source") not in pairsets:
                problems.append(f"config key 'pairsets.{name}.source': no pair set named {spec.get('source')!r}")
            elif _has_cycle(name, pairsets):
                problems.append(f"config key 'pairsets.{name}.source': pair sets derive from each other in a cycle")
            if "prompts_from" in spec and spec["prompts_from"] not in pairsets:
                problems.append(
                    f"config key 'pairsets.{name}.prompts_from': no pair set named {spec['prompts_from']!r}"
                )
        if kind == "corrupted":
            corrupter = (spec.get("corrupter") or {}).get("kind")
            if corrupter is None:
                problems.append(
                    f"config key 'pairsets.{name}.corrupter': a corrupted pair set needs a corrupter "
                    "({kind: llm, ...}, or {kind: prior} in the synthetic world)"
                )
            elif corrupter in registry.CORRUPTER_KINDS and "world" not in config:
                problems.append(
                    f"config key 'pairsets.{name}.corrupter.kind': the {corrupter} corrupter needs a 'world' section"
                )
    return problems


def _benchmark_problems(config: dict) -> list[str]:
    problems = []
    downloads = config.get("downloads", {})
    for name, spec in config["benchmarks"].items():
        if spec.get("annotations") and spec["annotations"] not in downloads:
            problems.append(
                f"config key 'benchmarks.{name}.annotations': no downloads entry named {spec['annotations']!r}"
            )
        if spec["source"] == "download" and spec.get("download") not in downloads:
            problems.append(
                f"config key 'benchmarks.{name}.download': no downloads entry named {spec.get('download')!r}"
            )
        if spec.get("items_scale", 1) != 1:
            problems += _items_scale_problems(name, spec)
        if spec["source"] in registry.BENCHMARK_SOURCES and "world" not in config:
            problems.append(
                f"config key 'benchmarks.{name}.source': {spec['source']} benchmarks need a 'world' section"
            )
    return problems


def _items_scale_problems(name: str, spec: dict) -> list[str]:
    """items_scale: only a generated source makes as many items as asked, and only for the kinds it lists."""
    import importlib

    key = f"config key 'benchmarks.{name}.items_scale'"
    module = registry.BENCHMARK_SOURCES.get(spec["source"])
    if not module:
        return [f"{key}: a {spec['source']} benchmark has the items it was published with"]
    scalable = getattr(importlib.import_module(module), "SCALABLE", ())
    if spec["kind"] in scalable:
        return []
    return [f"{key}: {spec['kind']} has a fixed number of items (scalable: {', '.join(scalable)})"]


def _judge_problems(config: dict) -> list[str]:
    """Judged benchmarks name an existing judge; a local judge model names an existing download; the world's
    judge backends need a world; every setting belongs to the judge's backend."""
    from mmalign.evaluate.benchmarks import JUDGED_KINDS
    from mmalign.judges import settings as judge_settings

    problems = []
    judges, downloads = config.get("judges", {}), config.get("downloads", {})
    for name, spec in config["benchmarks"].items():
        judge = spec.get("judge")
        if spec["kind"] in JUDGED_KINDS and judge is None:
            problems.append(f"config key 'benchmarks.{name}.judge': kind {spec['kind']} is scored by a judge; name one")
        elif judge is not None and judge not in judges:
            problems.append(f"config key 'benchmarks.{name}.judge': no judges entry named {judge!r}")
    for name, spec in judges.items():
        if spec.get("download") and spec["download"] not in downloads:
            problems.append(f"config key 'judges.{name}.download': no downloads entry named {spec['download']!r}")
        try:  # a setting of another backend (e.g. max_new_tokens on an openai judge) is a mistake, not a default
            judge_settings(spec)
        except ValueError as err:
            problems.append(f"config key 'judges.{name}': {err}")
    return problems


def _report_problems(config: dict) -> list[str]:
    """Every table row names a variant of this study, 'base', or one listed in report.not_run (variants a table
    shows as 'not run' on purpose): a misspelt name would otherwise read 'not run' too."""
    problems = []
    known = set(config["variants"]) | {"base"} | set(config["report"].get("not_run") or [])
    for table, spec in (config["report"].get("tables") or {}).items():
        for label, variant in spec["rows"].items():
            if variant not in known:
                problems.append(
                    f"config key 'report.tables.{table}.rows': row {label!r} names {variant!r}, which is neither a "
                    "variant of this study nor listed in report.not_run"
                )
    return problems


def _rl_problems(name: str, variant: dict) -> list[str]:
    """An RL variant's settings, read by the library's one layer of RL settings (an unknown key is named)."""
    from mmalign.train.rl_settings import RLSettings

    try:
        RLSettings.from_variant(variant)
    except (TypeError, ValueError) as err:
        return [f"config key 'variants.{name}.rl': {err}"]
    return []


def _reward_problems(config: dict) -> list[str]:
    """Reward models train on pair sets that exist; Table 7 names reward models and pair sets that exist."""
    problems = []
    pairsets, reward_models = config["pairsets"], config.get("reward_models") or {}
    for name, spec in reward_models.items():
        for pairset in spec["pairsets"]:
            if pairset not in pairsets:
                problems.append(f"config key 'reward_models.{name}.pairsets': no pair set named {pairset!r}")
        problems += _micro_batch_problems(f"reward_models.{name}", spec)
    table = config["report"].get("reward_table") or {}
    for label, rm in (table.get("rows") or {}).items():
        if rm not in reward_models:
            problems.append(f"config key 'report.reward_table.rows': row {label!r} names no reward model {rm!r}")
    for label, pairset in (table.get("columns") or {}).items():
        if pairset not in pairsets:
            problems.append(f"config key 'report.reward_table.columns': column {label!r} names no pair set {pairset!r}")
    return problems


def _has_cycle(start: str, pairsets: dict) -> bool:
    seen, name = set(), start
    while name in pairsets and pairsets[name]["kind"] in DERIVED_KINDS + ("bdhs",):
        if name in seen:
            return True
        seen.add(name)
        name = pairsets[name].get("source")
    return False


def main(argv: list[str] | None = None) -> int:
    """``python -m mmalign.config FILE...``: read config files strictly. Snakemake reports a YAML syntax error in a
    --configfile without its file or line, before the workflow's own checks run; this names both."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    status = 0
    for path in parser.parse_args(argv).files:
        try:
            check_yaml_file(path)
            print(f"{path}: ok")
        except (ConfigError, OSError) as err:
            print(err, file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
