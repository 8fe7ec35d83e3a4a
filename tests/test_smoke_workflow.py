"""The whole DAG, run for real on the smoke config (tests/smoke/config.yaml), then its report."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "tests" / "smoke" / "config.yaml"


def copy_workflow(dest: Path) -> Path:
    """A copy of the workflow (so a test may edit its library code without touching the repository)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("workflow", "config", "envs", "profiles"):
        shutil.copytree(REPO / name, dest / name, ignore=ignore)
    shutil.copy(REPO / "Snakefile", dest / "Snakefile")
    return dest


def snakemake(workdir: Path, *args: str, configfile: Path = SMOKE) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(workdir / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(configfile),
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("smoke"))
    out = snakemake(workdir, "--cores", "2")
    assert out.returncode == 0, out.stderr[-5000:]
    return workdir


@pytest.mark.slow
def test_smoke_study_produces_every_artifact(smoke_run):
    w = smoke_run
    for path in [
        "results/world/scenes.jsonl", "resources/models/tinyllava-smoke/config.json",
        "resources/models/tinyllava-smoke/processor_config.json", "results/pairs/povid/pairs.parquet",
        "results/pairs/povid/manifest.json", "results/runs/dpo_povid/spec.json",
        "results/runs/dpo_povid/adapter/adapter_config.json", "results/runs/dpo_povid/train_log.jsonl",
        "results/eval/base/pope/predictions.jsonl", "results/eval/dpo_povid/objhal/judgments.jsonl",
        "results/figures/pope.png", "results/figures/pope.svg", "results/figures/bdhs_iterations.png",
        "results/tables/table6.md", "results/tables/table6.csv", "results/figures/tables/table6.png",
        "results/tables/claims.md", "results/tables/claims.csv", "results/figures/size_series.png",
        "results/figures/beta_schedule.png", "results/figures/beta_schedule.svg",
    ]:  # fmt: skip
        assert (w / path).is_file(), path
    metrics = pd.read_csv(w / "results/tables/metrics.csv")
    pope = metrics[(metrics.benchmark == "pope") & (metrics.metric == "accuracy")]
    n_pope_items = sum(1 for _ in open(w / "results/benchmarks/pope/items.jsonl"))
    runs = {"base", "dpo_povid", "ipo_povid/seed0", "ipo_povid/seed1", "dpo_bdhs_povid", "mixed_dpo_povid"}
    assert set(pope.variant) == runs | {"ipo_povid"}  # the replicated variant: its seed runs and their mean
    ipo = pope[pope.subset == "all"].set_index("variant")
    assert ipo.loc["ipo_povid", "seeds"] == 2
    assert ipo.loc["ipo_povid", "value"] == pytest.approx(
        ipo.loc[["ipo_povid/seed0", "ipo_povid/seed1"], "value"].mean()
    )
    seeds = [json.loads((w / f"results/runs/ipo_povid/seed{k}/spec.json").read_text())["seed"] for k in (0, 1)]
    assert seeds == [0, 1]
    pope_all_row = ipo.loc["dpo_povid"]
    assert pope_all_row.ci_low <= pope_all_row.value <= pope_all_row.ci_high  # every number with its interval
    assert pope_all_row.ci_items == n_pope_items and pope_all_row.ci_note != pope_all_row.ci_note  # NaN: no note
    mmhalv = metrics[(metrics.benchmark == "mmhalv") & (metrics.metric == "score") & (metrics.subset == "all")]
    assert mmhalv.ci_low.isna().all() and mmhalv.ci_note.str.contains("min_items 20").all()  # 12 items: none
    environment = json.loads((w / "results/eval/base/pope/metrics.json").read_text())["environment"]
    assert environment["cpu"] and environment["torch_threads"] >= 1 and environment["packages"]["torch"]
    online = json.loads((w / "results/runs/mixed_dpo_povid/train_metrics.json").read_text())["online"]
    assert sum(v for k, v in online.items() if k != "pairs/generation_seconds") >= 16  # every example counted
    bdhs_pairs = pd.read_parquet(w / "results/pairs/bdhs/pairs.parquet")
    assert len(bdhs_pairs) > 0 and (bdhs_pairs.rejected_policy != "").all()
    stats = [json.loads(line) for line in open(w / "results/pairs/bdhs/bdhs_iterations.jsonl")]
    assert all(1 <= s["iterations"] <= 2 and len(s["similarities"]) == s["iterations"] for s in stats)
    assert set(pope.subset) == {"random", "popular", "adversarial", "all"}
    assert metrics.value.between(0, 1e6).all()
    spec = json.loads((w / "results/runs/dpo_povid/spec.json").read_text())
    assert spec["pairset"] == "povid" and spec["lora_r"] == 4 and spec["base_model"] == "tinyllava-smoke"
    train = json.loads((w / "results/runs/dpo_povid/train_metrics.json").read_text())
    assert train["steps"] > 0 and train["train_loss"] > 0
    decoding = json.loads((w / "results/eval/base/pope/metrics.json").read_text())["decoding"]
    assert decoding["do_sample"] is False and decoding["prompt_suffix"] == "answer with one word."
    judged = metrics[(metrics.benchmark == "mmhalv") & (metrics.subset == "all")].set_index(["variant", "metric"]).value
    assert judged["base", "judged"] == 12 and judged["base", "judge_failed"] == 0 and 0 <= judged["base", "score"] <= 6
    assert (w / "results/judgments/cache.sqlite").is_file()
    n_items = sum(1 for _ in open(w / "results/benchmarks/pope/items.jsonl"))
    assert sum(1 for _ in open(w / "results/eval/dpo_povid/pope/predictions.jsonl")) == n_items
    table = pd.read_csv(w / "results/tables/table6.csv", index_col=0)
    pope_all = pope[pope.subset == "all"].set_index("variant")["value"]
    assert table.loc["POVID: plain DPO", "POPE"] == pytest.approx(100 * pope_all["dpo_povid"])
    assert table.loc["POVID + BDHS_attn (Online)", "status"] == "not run"  # a row this study does not run
    assert table.loc["Baseline", "POPE (paper)"] == pytest.approx(86.40)  # compare_with_paper in the smoke config
    claims = pd.read_csv(w / "results/tables/claims.csv")
    assert len(claims) == 22 and set(claims.verdict) <= {"holds", "does not hold", "inconclusive", "not measured"}
    assert "diff" in claims.set_index("id").loc[20, "evidence"]  # claim 20 (IPO vs DPO): a paired interval


@pytest.mark.slow
def test_the_precomputed_reference_logps_of_the_smoke_study_equal_the_recomputed_ones(smoke_run, tmp_path, monkeypatch):
    """povid has two DPO-method readers (dpo_povid, ipo_povid): its pairs are scored once by the reference
    (rule reference_logps); TRL's inline forward in shuffled training-size batches gives the same numbers to
    1e-5 (relative beyond 1 nat: float32 rounding of a sum of token log-probs). The BDHS set has one reader,
    which scores it in its own process; the online run computes its reference inline."""
    from mmalign.train.reference import recompute_reference_logps

    monkeypatch.chdir(smoke_run)  # the pair tables name their images relative to the study's directory
    path = smoke_run / "results/reference_logps/povid/logps.parquet"
    table = pd.read_parquet(path).set_index("key")
    found = recompute_reference_logps(
        smoke_run / "resources/models/tinyllava-smoke", smoke_run / "results/pairs/povid/pairs.parquet", tmp_path
    )
    assert set(found) == set(table.index) and len(found) >= 24
    for key, (chosen, rejected) in found.items():
        assert table.loc[key, "ref_chosen_logps"] == pytest.approx(chosen, rel=1e-5, abs=1e-5)
        assert table.loc[key, "ref_rejected_logps"] == pytest.approx(rejected, rel=1e-5, abs=1e-5)
    assert not (smoke_run / "results/reference_logps/bdhs").exists()
    for variant, reference in [("dpo_povid", "artifact"), ("ipo_povid/seed1", "artifact"), ("dpo_bdhs_povid", "this run"),
                               ("mixed_dpo_povid", "inline")]:  # fmt: skip
        train = json.loads((smoke_run / f"results/runs/{variant}/train_metrics.json").read_text())
        assert train["reference_logps"] == reference, variant
        assert (train["arithmetic"]["flops"] is None) == (reference == "inline")  # online steps are not counted


@pytest.mark.slow
def test_another_base_model_rebuilds_the_reference_logps(smoke_run, tmp_path):
    """The reference log-probs are the base model's: a change to its build replans them (and everything after),
    never reusing the ones made with the old model."""
    config = yaml.safe_load(SMOKE.read_text())
    config["base_model"]["build"]["sft_scenes"] += 8
    edited = tmp_path / "model.yaml"
    edited.write_text(yaml.safe_dump(config, sort_keys=False))
    out = snakemake(smoke_run, "-n", "--configfile", str(edited))
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    jobs = planned_jobs(text)
    assert any(rule == "build_base_model" for rule, _ in jobs)
    assert [j for j in jobs if j[0] == "reference_logps"] == [("reference_logps", "pairset=povid")]


@pytest.mark.slow
def test_rerun_is_a_no_op_and_the_report_builds(smoke_run):
    out = snakemake(smoke_run, "-n", "--quiet", "rules")
    assert out.returncode == 0
    assert "Nothing to be done" in out.stdout + out.stderr
    out = snakemake(smoke_run, "--report", "report.zip")
    assert out.returncode == 0, out.stderr[-3000:]
    with zipfile.ZipFile(smoke_run / "report.zip") as archive:
        names = archive.namelist()
    assert any(n.endswith("pope.png") for n in names) and any(n.endswith("metrics.csv") for n in names)
    for name in (
        "table6.csv",
        "table6.png",
        "claims.csv",
        "size_series.png",
        "beta_schedule.png",
        "bdhs_iterations.png",
    ):
        assert any(n.endswith(name) for n in names), name


@pytest.mark.slow
def test_editing_library_code_reruns_only_the_rules_that_use_it(smoke_run):
    """pairs/build.py is in the code of build_pairs only: its downstream reruns, nothing upstream."""
    pairs_module = smoke_run / "workflow" / "scripts" / "mmalign" / "pairs" / "build.py"
    original = pairs_module.read_text()
    pairs_module.write_text(original + "\n# an edit\n")
    try:
        out = snakemake(smoke_run, "-n", "--quiet", "rules")
        text = out.stdout + out.stderr
        assert out.returncode == 0, text
        table = text.split("Job stats:")[1].split("Reasons:")[0]
        planned = {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", table, re.M)} - {"total"}
        assert planned == {
            "build_pairs",
            "build_bdhs_pairs",
            "reference_logps",
            "train",
            "evaluate",
            "aggregate_metrics",
            "figure_pope",
            "figure_bdhs_iterations",
            "paper_table",
            "claims_scorecard",
            "figure_size_series",
            "all",
        }
        # the five runs (four variants, ipo_povid with two seeds; the BDHS pairs derive from povid) on the three
        # benchmarks, not the base model
        assert re.search(r"^evaluate\s+15$", table, re.M)
    finally:
        pairs_module.write_text(original)


def planned_jobs(dry_run_output: str) -> list[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run plans, e.g. ("train", "trained=dpo_povid")."""
    jobs = []
    for block in re.split(r"^(?=(?:local)?rule \w+:)", dry_run_output, flags=re.M)[1:]:
        rule = re.match(r"(?:local)?rule (\w+):", block).group(1)
        wildcards = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        jobs.append((rule, wildcards.group(1) if wildcards else ""))
    return jobs


# what is rebuilt from metrics.csv whenever any evaluation changes (smoke config: one table)
REPORT_JOBS = [
    ("aggregate_metrics", ""),
    ("figure_pope", ""),
    ("paper_table", "table=table6"),
    ("claims_scorecard", ""),
    ("figure_size_series", ""),
    ("all", ""),
]


@pytest.mark.slow
def test_changing_one_variants_beta_replans_only_that_variant(smoke_run, tmp_path):
    """beta reaches the run through variant_spec's params (a rerun trigger): its spec, training, evaluations
    and the tables and figures built from them are planned; the other variant and every upstream artifact
    are not."""
    config = yaml.safe_load(SMOKE.read_text())
    config["variants"]["dpo_povid"]["beta"] = 0.2
    edited = tmp_path / "beta.yaml"
    edited.write_text(yaml.safe_dump(config, sort_keys=False))  # reordered keys would count as changed params
    out = snakemake(smoke_run, "-n", "--configfile", str(edited))  # the last --configfile given wins
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert sorted(planned_jobs(text)) == sorted([
        ("variant_spec", "trained=dpo_povid"), ("train", "trained=dpo_povid"),
        *[("evaluate", f"variant=dpo_povid, benchmark={b}") for b in ("pope", "objhal", "mmhalv")],
        *REPORT_JOBS,
    ]), text  # fmt: skip


@pytest.mark.slow
def test_editing_the_bdhs_library_replans_the_bdhs_rules_and_nothing_unrelated(smoke_run):
    """bdhs.py is in the code of build_bdhs_pairs, Fig. 9's schedule and the training of variants that run BDHS
    code (online BDHS, image distortion): the BDHS pair set, the variant trained on it,
    what is built from that variant and Fig. 9 are planned; the POVID pairs, the base model, plain DPO and
    Mixed-DPO are not."""
    bdhs_module = smoke_run / "workflow" / "scripts" / "mmalign" / "bdhs.py"
    original = bdhs_module.read_text()
    bdhs_module.write_text(original + "\n# an edit\n")
    try:
        out = snakemake(smoke_run, "-n")
        text = out.stdout + out.stderr
        assert out.returncode == 0, text
        assert sorted(planned_jobs(text)) == sorted([
            ("build_bdhs_pairs", "pairset=bdhs"), ("train", "trained=dpo_bdhs_povid"),
            *[("evaluate", f"variant=dpo_bdhs_povid, benchmark={b}") for b in ("pope", "objhal", "mmhalv")],
            ("figure_bdhs_iterations", ""), ("beta_schedule", ""), ("figure_beta_schedule", ""),  # Fig. 9 is bdhs.py's
            *REPORT_JOBS,
        ]), text  # fmt: skip
    finally:
        bdhs_module.write_text(original)


@pytest.mark.slow
def test_one_evaluation_job_per_variant_writes_what_one_job_per_benchmark_wrote(smoke_run, tmp_path):
    """evaluation.jobs: per_variant replaces the (variant, benchmark) `evaluate` jobs by one `evaluate_variant`
    job per variant; in a copy of the finished smoke study, the base model's evaluation redone that way gives
    the same predictions and metrics for every benchmark, from one job."""
    work = tmp_path / "w"
    shutil.copytree(smoke_run, work, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    before = {p.relative_to(work): p.read_text() for p in (work / "results/eval/base").glob("*/*")}
    shutil.rmtree(work / "results/eval/base")
    benchmarks = sorted(yaml.safe_load(SMOKE.read_text())["benchmarks"])
    targets = [f"results/eval/base/{b}/metrics.json" for b in benchmarks]
    out = snakemake(work, "--cores", "1", *targets, "--config", "evaluation={jobs: per_variant}")  # --config: last
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-5000:]
    assert re.search(r"^evaluate_variant\s+1$", text, re.M) and not re.search(r"^evaluate\s+\d", text, re.M), text
    for benchmark in benchmarks:
        path = Path("results/eval/base") / benchmark
        assert (work / path / "predictions.jsonl").read_text() == before[path / "predictions.jsonl"]
        again, first = (
            json.loads(t) for t in ((work / path / "metrics.json").read_text(), before[path / "metrics.json"])
        )
        keep = [r for r in first["metrics"] if r["metric"] != "judge_cached"]  # the copied cache answers the rerun
        assert [r for r in again["metrics"] if r["metric"] != "judge_cached"] == keep, benchmark
    assert (work / "logs/evaluate/base.log").is_file()


@pytest.mark.slow
def test_base_model_replicates_train_each_run_from_its_own_base_model(tmp_path):
    """replicates.base_model on the smoke study: the second base model is built with seed 1 (other weights), its
    BDHS pairs are its own (same prompts and chosen answers, other policy-made rejected ones), run 1 of each replicated variant
    trains from it, and metrics.csv reports the base model as the mean of its two seeds."""
    config = yaml.safe_load(SMOKE.read_text())
    config["replicates"] = {"seeds": 2, "base_model": True, "variants": ["ipo_povid", "dpo_bdhs_povid"]}
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    work = copy_workflow(tmp_path / "w")
    out = snakemake(work, "--cores", "2", "results/tables/metrics.csv", configfile=configfile)
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    models = work / "resources/models"
    weights = [(models / m / "model.safetensors").read_bytes() for m in ("tinyllava-smoke", "tinyllava-smoke-seed1")]
    assert weights[0] != weights[1]
    assert json.loads((work / "results/base_model/tinyllava-smoke-seed1.json").read_text())["settings"]["seed"] == 1
    pairs = [pd.read_parquet(work / f"results/pairs/bdhs/{p}pairs.parquet") for p in ("", "seed1/")]
    assert pairs[0]["chosen"].tolist() == pairs[1]["chosen"].tolist()
    assert pairs[0]["rejected_policy"].tolist() != pairs[1]["rejected_policy"].tolist()  # the BDHS answers
    spec = {r: json.loads((work / f"results/runs/{r}/spec.json").read_text()) for r in ("ipo_povid/seed0",
            "ipo_povid/seed1", "dpo_bdhs_povid/seed1")}  # fmt: skip
    assert spec["ipo_povid/seed0"]["base_model"] == "tinyllava-smoke" and spec["ipo_povid/seed0"]["seed"] == 0
    assert (spec["ipo_povid/seed1"]["base_model"], spec["ipo_povid/seed1"]["pairset"]) == (
        "tinyllava-smoke-seed1",
        "povid",
    )
    assert spec["dpo_bdhs_povid/seed1"]["pairset"] == "bdhs/seed1"
    metrics = pd.read_csv(work / "results/tables/metrics.csv")
    pope = metrics[(metrics.benchmark == "pope") & (metrics.subset == "all") & (metrics.metric == "accuracy")]
    rows = pope.set_index("variant")
    assert rows.loc["base", "seeds"] == 2 and {"base/seed0", "base/seed1"} <= set(rows.index)
    assert rows.loc["base", "value"] == pytest.approx(
        (rows.loc["base/seed0", "value"] + rows.loc["base/seed1", "value"]) / 2
    )
