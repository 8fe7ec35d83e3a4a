"""A recipe change judged by the training noise it leaves: the same variants trained with several seeds under the
default study's recipe ("before") and under a recipe overlay ("after"), each seed evaluated on every benchmark,
then the spread across seeds and the mean of every report column side by side.

    .venv/bin/python benchmarks/recipe_spread.py --dir DIR --recipe RECIPE.yaml \
        --variants dpo_rlhfv online_bdhs [--seeds 3] [--cores 2] [--json OUT.json]

RECIPE.yaml is merged into config/config.yaml by mmalign.overrides.merge (mappings key by key), e.g.

    variants:
      online_bdhs: {learning_rate: 1.0e-3, projector_learning_rate: 3.0e-4}

The study is cut down to the named variants (and the base model), so it trains ``2 x seeds x variants`` runs and
nothing else. With no ``--variants`` it builds and evaluates only the base model's ``seeds`` replicates: the screen
of a base-model build recipe (``base_model: {build: ...}``), a few minutes a seed. The "after" study starts from a
copy of the finished "before" one (Snakemake's own rerun triggers then retrain only what the overlay changed). A
recipe is good for the claims when its spreads are small against the differences the claims test: compare with
the full study's ``benchmarks/seed_spread.py``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from mmalign.config import BASE_REPLICATES, base_replicate_runs
from mmalign.overrides import OverrideError, keep_only
from mmalign.overrides import merge as merged
from mmalign.report.metrics import aggregate
from mmalign.report.uncertainty import Settings

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from seed_spread import replicated_columns, variant_spreads  # noqa: E402


def cut_down(config: dict, variants: list[str], seeds: int) -> dict:
    """The study with only these variants (the others declared not run), each replicated `seeds` times. With no
    variants, only the base model is replicated (and the variants stay declared, so that the config validates)."""
    if not variants:
        return {**config, "replicates": {"seeds": seeds, "base_model": True, "variants": []}}
    try:
        study = keep_only(config, {"variants": variants})
    except OverrideError:
        unknown = sorted(set(variants) - set(config["variants"]))
        raise SystemExit(f"--variants: not in config 'variants': {', '.join(unknown)}") from None
    # replicates.base_model stays as the config has it: with it, run k also starts from base model k, so a
    # base-model build recipe (base_model: {build: ...}) is judged on the variants as well as the base model
    study["replicates"] = {**study.get("replicates", {}), "seeds": seeds, "variants": list(variants)}
    return study


def base_evaluations(config: dict) -> list[str]:
    """The metrics.json of every base-model replicate on every benchmark (paths relative to the study)."""
    return [
        f"results/eval/{run}/{benchmark}/metrics.json"
        for run in base_replicate_runs(config["replicates"]["seeds"])
        for benchmark in config["benchmarks"]
    ]


def base_only(config: dict) -> bool:
    """Whether the study replicates the base-model build alone (a build recipe's screen)."""
    return config["replicates"]["variants"] == []


def targets(config: dict) -> list[str]:
    """What a recipe study builds: the metrics table, or for a base-only study the base model's runs."""
    return base_evaluations(config) if base_only(config) else ["results/tables/metrics.csv"]


def run_study(workdir: Path, config: dict, cores: str) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    configfile = workdir / "study.yaml"
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    command = [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(configfile), "--cores", cores, *targets(config),
    ]  # fmt: skip
    log = workdir / "snakemake.log"
    with log.open("w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"snakemake failed in {workdir} (rc {done.returncode}); see {log}")


def base_metrics(workdir: Path, config: dict) -> Path:
    """The base-model runs' rows of a metrics table, made by the study's own aggregation (intervals and the mean and
    spread over seeds), for a study that built only those runs."""
    out = workdir / "results" / "tables" / "base_metrics.csv"
    aggregate(
        [workdir / path for path in base_evaluations(config)],
        out,
        Settings.from_config(config["report"].get("uncertainty") or {}),
        {BASE_REPLICATES: base_replicate_runs(config["replicates"]["seeds"])},
        {name: workdir / "results" / "benchmarks" / name / "items.jsonl" for name in config["benchmarks"]},
    )
    return out


def read(workdir: Path, config: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    table = base_metrics(workdir, config) if base_only(config) else workdir / "results" / "tables" / "metrics.csv"
    metrics = pd.read_csv(table, dtype={"subset": str})
    columns = config["report"]["columns"]
    return variant_spreads(metrics, columns), replicated_columns(metrics, columns, "value")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, type=Path, help="work directory (before/ and after/ go there)")
    parser.add_argument("--recipe", required=True, type=Path, help="YAML overlay on config/config.yaml")
    parser.add_argument("--variants", nargs="*", default=[], help="variants to train (none: the base model alone)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cores", default="2")
    parser.add_argument("--configfile", type=Path, default=REPO / "config" / "config.yaml")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    config = yaml.safe_load(args.configfile.read_text())
    recipe = yaml.safe_load(args.recipe.read_text()) or {}
    before_dir, after_dir = args.dir / "before", args.dir / "after"

    before = cut_down(config, args.variants, args.seeds)
    after = cut_down(merged(config, recipe), args.variants, args.seeds)
    run_study(before_dir, before, args.cores)
    if not after_dir.exists():
        shutil.copytree(before_dir, after_dir, symlinks=True)
    run_study(after_dir, after, args.cores)

    (sd_before, mean_before), (sd_after, mean_after) = read(before_dir, before), read(after_dir, after)
    pd.set_option("display.width", 200)
    sides = (("Seed spread (SD)", sd_before, sd_after), ("Mean over seeds", mean_before, mean_after))
    for title, before, after in sides:
        side = pd.concat({"before": before, "after": after}, axis=1).swaplevel(axis=1).sort_index(axis=1, level=0)
        print(f"\n{title}, before | after the recipe {args.recipe.name}:")
        print(side.round(2).to_string())
    summary = {
        "recipe": recipe,
        "seeds": args.seeds,
        "seed_sd": {"before": sd_before.round(3).to_dict("index"), "after": sd_after.round(3).to_dict("index")},
        "mean": {"before": mean_before.round(3).to_dict("index"), "after": mean_after.round(3).to_dict("index")},
    }
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
