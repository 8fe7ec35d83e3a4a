"""The DAG: dry runs plan every rule for both studies, lint is clean, bad configs stop before any job."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def run_snakemake(*args, cwd=REPO):
    return subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def planned_rules(output: str) -> set[str]:
    table = output.split("Job stats:")[1].split("Reasons:")[0]
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", table, re.M)} - {"total"}


def test_dry_run_plans_every_rule_of_the_default_study():
    out = run_snakemake("-n", "--forceall", "--directory", str(REPO), "--quiet", "rules")  # plan all, whatever exists
    assert out.returncode == 0, out.stderr
    rules = planned_rules(out.stdout + out.stderr)
    assert rules == {
        "build_world", "build_base_model", "build_pairs", "build_bdhs_pairs", "build_analog_pairs", "variant_spec",
        "reference_logps", "train",
        "benchmark_items", "evaluate_variant", "aggregate_metrics", "figure_pope", "figure_bdhs_iterations", "all",
        "paper_table", "claims_scorecard", "figure_size_series", "beta_schedule", "figure_beta_schedule",
        "reward_split", "train_reward_model", "eval_reward_model", "reward_table",
    }  # fmt: skip
    text = out.stdout + out.stderr
    # Table 7: one split per pair set a reward model reads, one training and one held-out evaluation per model
    assert re.search(r"^reward_split\s+3$", text, re.M) and re.search(r"^train_reward_model\s+4$", text, re.M)
    assert re.search(r"^eval_reward_model\s+4$", text, re.M) and re.search(r"^reward_table\s+1$", text, re.M)
    # evaluation.jobs: per_variant: one job per evaluated model (the base model and every run: a replicated
    # variant is one run per seed)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    replicated = config["replicates"]["variants"]
    runs = len(config["variants"]) - len(replicated) + config["replicates"]["seeds"] * len(replicated)
    base_runs = config["replicates"]["seeds"] if config["replicates"].get("base_model") else 1
    assert re.search(rf"^evaluate_variant\s+{runs + base_runs}$", out.stdout + out.stderr, re.M)
    # replicates.base_model: one base model per seed
    assert re.search(rf"^build_base_model\s+{base_runs}$", out.stdout + out.stderr, re.M)


def test_a_derived_pair_set_reads_its_source_pair_set():
    """A corrupted set built with the world's prior corrupter reads the world and its source set: planned after
    it (a dry run that lost the source would let the job start before its input exists)."""
    out = run_snakemake(
        "-n", "--forceall", "--directory", str(REPO), "results/pairs/vlfeedback_corrupted/pairs.parquet"
    )
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    block = re.search(
        r"rule build_pairs:\n(?:    .*\n)*?    input: (.*)\n(?:    .*\n)*?    wildcards: pairset=vlfeedback_corrupted",
        text,
    )
    assert block and "results/pairs/vlfeedback/pairs.parquet" in block.group(1), text
    assert "results/world/scenes.jsonl" in block.group(1)


def test_dry_run_plans_the_paper_study_without_network():
    out = run_snakemake("-n", "--configfile", "config/paper.yaml", "--quiet", "rules")
    assert out.returncode == 0, out.stderr
    rules = planned_rules(out.stdout + out.stderr)
    assert {
        "download_model",
        "download_dataset",
        "build_pairs",
        "build_bdhs_pairs",
        "train",
        "evaluate",
        "figure_pope",
        "paper_table",
        "claims_scorecard",
        "figure_size_series",
        "figure_beta_schedule",
        "build_pairs_with_images",
        "reward_split",
        "train_reward_model",
        "eval_reward_model",
        "reward_table",
    } <= rules
    assert "build_world" not in rules and "build_base_model" not in rules  # nothing synthetic in the paper study


def test_every_rule_has_a_log_and_a_conda_env():
    out = run_snakemake("--lint")
    text = out.stdout + out.stderr
    assert "Congratulations, your workflow is in a good condition" in text, text
    rules = re.findall(
        r"^\s*rule (\w+):", "\n".join(p.read_text() for p in (REPO / "workflow/rules").glob("*.smk")), re.M
    )
    for path in (REPO / "workflow/rules").glob("*.smk"):
        for block in re.split(r"^\s*rule ", path.read_text(), flags=re.M)[1:]:  # rules may sit under an `if`
            name = block.split(":")[0]
            if name == "all":
                continue
            assert re.search(r"\n\s+log:", block) and re.search(r"\n\s+conda:", block), (
                f"rule {name} lacks log: or conda:"
            )
            env = re.search(r'conda:\n\s+"([^"]+)"', block).group(1)
            assert (path.parent / env).resolve().is_file(), f"rule {name}: env file {env} missing"
    assert len(rules) >= 9


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"variants": {"dpo_povid": {"lerning_rate": 0.1}}}, "variants.dpo_povid.lerning_rate': unknown key"),
        ({"variants": {"dpo_povid": {"beta": "high"}}}, "variants.dpo_povid.beta': 'high' is not of type 'number'"),
        ({"wrld": {}}, "config key 'wrld': unknown key"),
        ({"variants": {"dpo_povid": {"pairset": "nope"}}}, "variants.dpo_povid.pairset': no pair set named 'nope'"),
        ({"world": {"partner_prob": 1.5}}, "world.partner_prob': 1.5 is greater than the maximum of 1"),
        # a bad default is reported on every variant that inherits it
        ({"variant_defaults": {"beta": -1}}, "variants.dpo_bdhs_attn.beta': -1 is less than or equal to the minimum"),
        ({"report": {"columns": {"POPE": {"metrc": "f1"}}}}, "report.columns.POPE.metrc': unknown key"),
        (
            {"report": {"tables": {"table2": {"rows": {"DPO": 3}}}}},
            "report.tables.table2.rows.DPO': 3 is not of type 'string'",
        ),
        ({"pairsets": {"povid_5k": {"source": "povdi"}}}, "pairsets.povid_5k.source': no pair set named 'povdi'"),
        (
            {"pairsets": {"povid_5k": {"source": "povid_n100"}, "povid_n100": {"source": "povid_5k"}}},
            "pairsets.povid_5k.source': pair sets derive from each other in a cycle",
        ),
        (
            {"pairsets": {"vlfeedback_corrupted": {"corrupter": {"kind": "llm", "api_key": "sk-x"}}}},
            "pairsets.vlfeedback_corrupted.corrupter.api_key': unknown key",
        ),
    ],
)
def test_bad_config_stops_before_any_job_naming_the_key(tmp_path, edit, message):
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())

    def merge(base, extra):
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                merge(base[key], value)
            else:
                base[key] = value

    merge(config, edit)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    out = run_snakemake("-n", "--configfile", str(bad))
    assert out.returncode != 0
    assert message in out.stdout + out.stderr
    assert "Job stats" not in out.stdout + out.stderr


def test_a_config_without_a_column_the_claims_use_stops_before_any_job(tmp_path):
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    del config["report"]["columns"]["MMVet"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    out = run_snakemake("-n", "--configfile", str(bad))
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "Job stats" not in text
    assert "report.columns' does not fit the claims" in text and "column 'MMVet' is not in report.columns" in text


def test_replicate_seeds_are_each_their_own_target(tmp_path):
    """replicates: every replicated variant becomes <variant>/seed0..seed2, trained, evaluated and aggregated;
    the variant alone is no longer a run (the report reads it as the mean of its seeds)."""
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["replicates"] = {"seeds": 3, "variants": ["dpo_povid", "online_dpo_povid"]}
    path = tmp_path / "replicates.yaml"
    path.write_text(yaml.safe_dump(config))
    out = run_snakemake("-n", "--forceall", "results/tables/claims.md", "--configfile", str(path))
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    for variant in ("dpo_povid", "online_dpo_povid"):
        trained = set(re.findall(rf"wildcards: trained=({variant}(?:/seed\d)?)\n", text))
        assert trained == {f"{variant}/seed{k}" for k in range(3)}, trained
        evaluated = set(re.findall(rf"wildcards: variant=({variant}(?:/seed\d)?)\n", text))
        assert evaluated == {f"{variant}/seed{k}" for k in range(3)}
    assert "results/runs/dpo_povid/seed2/adapter" in text
    assert "results/eval/dpo_povid/seed1/pope/judgments.jsonl" in text


def test_an_overlay_listed_after_the_default_config_changes_only_its_own_keys():
    """docs/configuration.md: `--configfile config/config.yaml overlay.yaml` merges the overlay key by key (a
    single --configfile replaces the default config). The shipped five-seed overlay: base models 3 and 4, and runs
    seed3 and seed4 of every replicated variant, with every other variant of the default study still planned once."""
    overlay = REPO / "config" / "overlays" / "five-seeds.yaml"
    assert yaml.safe_load(overlay.read_text()) == {"replicates": {"seeds": 5}}  # nothing else changes
    out = run_snakemake("-n", "--forceall", "--configfile", "config/config.yaml", str(overlay))
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    replicated = config["replicates"]["variants"]
    assert re.search(rf"^train\s+{len(config['variants']) - len(replicated) + 5 * len(replicated)}$", text, re.M)
    assert re.search(r"^build_base_model\s+5$", text, re.M)
    trained = set(re.findall(r"wildcards: trained=([\w/]+)\n", text))
    for variant in replicated:
        assert {f"{variant}/seed{k}" for k in range(5)} <= trained, variant
    assert {v for v in config["variants"] if v not in replicated} <= trained


def test_the_one_seed_overlay_trains_every_variant_once_from_one_base_model():
    """config/overlays/one-seed.yaml (the quick study of README): one base model, every variant trained once under
    its own name (no seed<k> runs), and the base model evaluated once."""
    overlay = REPO / "config" / "overlays" / "one-seed.yaml"
    out = run_snakemake("-n", "--forceall", "--configfile", "config/config.yaml", str(overlay))
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert re.search(r"^build_base_model\s+1$", text, re.M)
    trained = set(re.findall(r"wildcards: trained=(\S+)\n", text))
    assert trained == set(config["variants"])
    evaluated = set(re.findall(r"wildcards: variant=(\S+)\n", text))
    assert "base" in evaluated and not any("seed" in v for v in evaluated)


def job_inputs(text: str, rule: str, wildcard: str) -> str:
    """The input line of one planned job of a dry run (its wildcards line names it)."""
    block = re.search(
        rf"rule {rule}:\n(?:    .*\n)*?    input: (.*)\n(?:    .*\n)*?    wildcards: {re.escape(wildcard)}\n", text
    )
    assert block, f"no {rule} job with {wildcard}"
    return block.group(1)


def test_base_model_replicates_wire_each_run_to_its_own_base_model_and_pairs():
    """The default study (replicates.base_model): run k trains from base model k on the pairs base model k made,
    with reference log-probs scored by base model k; base model k is evaluated without an adapter; run 0 reads
    exactly what the variant alone would."""
    out = run_snakemake("-n", "--forceall", "--directory", str(REPO))
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    for k, model in enumerate(["tinyllava", "tinyllava-seed1", "tinyllava-seed2"]):
        assert f"output: resources/models/{model}, results/base_model/{model}.json" in text
        evaluated = job_inputs(text, "evaluate_variant", f"variant=base/seed{k}")
        assert evaluated.startswith(f"resources/models/{model}, ") and "adapter" not in evaluated
    assert job_inputs(text, "train", "trained=dpo_rlhfv/seed0").split(", ")[1:3] == [
        "resources/models/tinyllava", "results/pairs/rlhfv/pairs.parquet"
    ]  # fmt: skip
    assert job_inputs(text, "train", "trained=dpo_rlhfv/seed1").split(", ")[1:3] == [
        "resources/models/tinyllava-seed1", "results/pairs/rlhfv/seed1/pairs.parquet"
    ]  # fmt: skip
    assert job_inputs(text, "build_analog_pairs", "pairset=rlhfv/seed2").endswith("resources/models/tinyllava-seed2")
    assert "resources/models/tinyllava-seed1" in job_inputs(text, "build_bdhs_pairs", "pairset=bdhs_attn/seed1")
    # the POVID analog's pairs are shared by every base model; their reference log-probs are not
    ipo = job_inputs(text, "train", "trained=ipo_povid/seed2")
    assert "results/pairs/povid/pairs.parquet" in ipo and "results/reference_logps/povid/seed2/logps.parquet" in ipo
    assert job_inputs(text, "reference_logps", "pairset=povid/seed2") == (
        "results/pairs/povid/pairs.parquet, resources/models/tinyllava-seed2"
    )
    # Fig. 10 draws the config's BDHS sets, not their copies for other base models
    figure = re.search(r"rule figure_bdhs_iterations:\n    input: (.*)\n", text).group(1)
    assert "results/pairs/bdhs_attn/bdhs_iterations.jsonl" in figure and "/seed" not in figure


def test_replicating_an_unknown_variant_stops_naming_the_key(tmp_path):
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["replicates"] = {"seeds": 2, "variants": ["dpo_povdi"]}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    out = run_snakemake("-n", "--configfile", str(path))
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "config key 'replicates.variants': no variants named ['dpo_povdi']" in text


def test_the_recipe_study_trains_only_its_variants_with_the_overlay_applied(tmp_path):
    """benchmarks/recipe_spread.py: the study cut down to two variants x 3 seeds plans their 6 trainings and
    nothing else trained, the other variants declared not run, and the overlay's learning rate reaches the run."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from recipe_spread import cut_down, merged

    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    default_rate = config["variants"]["online_bdhs"].get("learning_rate")
    recipe = {"variants": {"online_bdhs": {"learning_rate": 7.0e-4}}}
    study = cut_down(merged(config, recipe), ["dpo_rlhfv", "online_bdhs"], 3)
    assert study["variants"]["online_bdhs"] == {**config["variants"]["online_bdhs"], "learning_rate": 7.0e-4}
    assert config["variants"]["online_bdhs"].get("learning_rate") == default_rate  # the config is untouched
    assert "dpo_povid" in study["report"]["not_run"] and "online_bdhs" not in study["report"]["not_run"]
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    out = run_snakemake("-n", "results/tables/metrics.csv", "--directory", str(tmp_path), "--configfile", str(path))
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    trained = set(re.findall(r"wildcards: trained=(\S+)\n", text))
    assert trained == {f"{v}/seed{k}" for v in ("dpo_rlhfv", "online_bdhs") for k in range(3)}
    with pytest.raises(SystemExit, match="not in config 'variants': dpo_nope"):
        cut_down(config, ["dpo_nope"], 3)


def test_the_base_build_screen_builds_and_evaluates_only_the_base_models(tmp_path):
    """benchmarks/recipe_spread.py with no variants: the base model's seeds are built with the overlay's recipe and
    evaluated on every benchmark, and nothing trains."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from recipe_spread import cut_down, merged, targets

    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    study = cut_down(merged(config, {"base_model": {"build": {"sft_epochs": 5}}}), [], 3)
    assert study["replicates"] == {"seeds": 3, "base_model": True, "variants": []}
    assert targets(study)[-1] == f"results/eval/base/seed2/{list(config['benchmarks'])[-1]}/metrics.json"
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    out = run_snakemake("-n", *targets(study), "--directory", str(tmp_path), "--configfile", str(path))
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert set(re.findall(r"output: resources/models/(\S+),", text)) == {
        "tinyllava",
        "tinyllava-seed1",
        "tinyllava-seed2",
    }
    assert set(re.findall(r"wildcards: variant=(\S+)\n", text)) == {"base/seed0", "base/seed1", "base/seed2"}
    planned = set(re.findall(r"^(?:local)?rule (\w+):$", text, re.M))
    assert planned == {"build_world", "benchmark_items", "build_base_model", "evaluate_variant"}
