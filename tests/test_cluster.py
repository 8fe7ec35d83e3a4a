"""The cluster path for real: the smoke study through a local single-node SLURM with profiles/slurm, and a
GPU request on a machine without one stopping before training."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from local_slurm import LocalSlurm, conf_to_restore, missing_requirements, slurm_conf
from test_smoke_workflow import copy_workflow, snakemake

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
GPU_KEYS = ("gpu", "gres", "gpu_model", "processes", "accelerate")


def load_profile() -> dict:
    return yaml.safe_load(PROFILE.read_text())


def test_profile_sizes_gpu_jobs_and_grows_memory_and_time_on_retries():
    profile = load_profile()
    assert profile["executor"] == "slurm" and profile["retries"] >= 1
    for section in [profile["default-resources"], *profile["set-resources"].values()]:
        for key in ("mem_mb", "runtime"):
            if key in section:  # every size is a function of the attempt: a retry asks for more
                assert "attempt" in str(section[key]), section
    gpu_rules = {rule for rule, res in profile["set-resources"].items() if res.get("gpu")}
    assert gpu_rules == {
        "train", "evaluate", "evaluate_variant", "build_bdhs_pairs", "reference_logps", "train_reward_model",
        "eval_reward_model",
    }  # fmt: skip
    accelerate = profile["set-resources"]["train"]["accelerate"]
    assert (REPO / "config" / "accelerate" / f"{accelerate}.yaml").is_file()


def local_profile(dest: Path) -> Path:
    """profiles/slurm for the local test node: the same file without GPU requests (the node has no GPU),
    and status checks every few seconds instead of the plugin's 40 s start (the smoke jobs take seconds)."""
    profile = load_profile()
    for resources in profile["set-resources"].values():
        for key in GPU_KEYS:
            resources.pop(key, None)
    profile["slurm-status-command"] = "squeue"  # no accounting database, so no sacct (MinJobAge keeps jobs listed)
    profile["slurm-init-seconds-before-status-checks"] = 2
    profile["max-threads"] = 2
    profile["slurm-no-account"] = True  # no accounting database to guess an account from
    dest.mkdir(parents=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(profile))
    return dest


def submitted_jobs(log: str) -> dict[str, str]:
    """SLURM job id -> rule name, from Snakemake's output (the plugin logs under slurm_logs/rule_<name>/)."""
    return dict(re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+)/", log))


def scontrol(job_id: str, env: dict) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "job", job_id], env=env, capture_output=True, text=True, check=True)
    return dict(re.findall(r"(\w+)=(\S+)", out.stdout))


def test_the_harness_puts_back_a_machines_slurm_conf_but_not_its_own_leftover(tmp_path):
    conf = tmp_path / "slurm.conf"
    assert conf_to_restore(conf) is None
    machine_conf = b"ClusterName=site\nSlurmctldHost=head\n"
    conf.write_bytes(machine_conf)
    assert conf_to_restore(conf) == machine_conf
    # A run killed before its cleanup leaves the harness's own config; put back, it would outlive every later run.
    conf.write_text(slurm_conf(tmp_path, "vm", 4, 600_000))
    assert conf_to_restore(conf) is None


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    reason = missing_requirements()
    if reason:
        if os.environ.get("MMALIGN_REQUIRE_SLURM"):  # .ci/run installs SLURM: there, its absence is a failure
            pytest.fail(f"MMALIGN_REQUIRE_SLURM is set but no local SLURM can run: {reason}")
        pytest.skip(f"no local SLURM: {reason}")
    # The profile is sized for the paper's model (up to 256 GB per job): the node declares that much, and 4
    # CPUs so that two 2-thread jobs overlap their start-up and status polling.
    with LocalSlurm(tmp_path_factory.mktemp("slurm"), memory_mb=600_000, cpus=4) as cluster:
        yield cluster


@pytest.mark.slow
def test_smoke_study_runs_through_a_real_slurm_with_the_profile(slurm, tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    profile = local_profile(tmp_path / "profile")
    out = snakemake(workdir, "--workflow-profile", str(profile))
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-6000:] + slurm.logs()
    jobs = submitted_jobs(log)
    details = {job_id: scontrol(job_id, slurm.env) for job_id in jobs}
    rules = set(jobs.values())
    assert {"build_world", "build_base_model", "build_pairs", "build_bdhs_pairs", "train",
            "benchmark_items", "evaluate"} <= rules  # fmt: skip
    assert not rules & {"aggregate_metrics", "figure_pope", "variant_spec"}  # localrules stay on the submit host
    assert all(d["JobState"] == "COMPLETED" for d in details.values()), details
    # the profile's per-rule sizes reached sbatch: first attempt of train asks 256000 MB for 48 h
    train = next(details[j] for j, rule in jobs.items() if rule == "train")
    assert train["MinMemoryNode"] == "250G" and train["TimeLimit"] == "2-00:00:00"
    world = next(details[j] for j, rule in jobs.items() if rule == "build_world")
    assert world["MinMemoryNode"] == "4000M" and world["TimeLimit"] == "00:30:00"
    metrics = pd.read_csv(workdir / "results/tables/metrics.csv")
    runs = {"base", "dpo_povid", "ipo_povid/seed0", "ipo_povid/seed1", "dpo_bdhs_povid", "mixed_dpo_povid"}
    assert set(metrics.variant) == runs | {"ipo_povid"}


# A job that fails unless SLURM granted it at least 4000 MB: the profile's first attempt asks for 2000.
NEEDS_MEMORY = """
rule needs_memory:
    output:
        "done.txt",
    log:
        "needs_memory.log",
    shell:
        "granted=$(scontrol show job $SLURM_JOB_ID | grep -o 'MinMemoryNode=[0-9]*' | cut -d= -f2); "
        "echo $granted >> granted.txt; test $granted -ge 4000 && touch {output}"
"""


@pytest.mark.slow
def test_a_failed_job_is_resubmitted_with_more_memory(slurm, tmp_path):
    """retries + mem_mb "2000 * attempt" of profiles/slurm, through SLURM: attempt 1 gets 2000 MB and fails,
    attempt 2 gets 4000 MB and succeeds."""
    workdir = tmp_path / "wf"
    workdir.mkdir()
    (workdir / "Snakefile").write_text(NEEDS_MEMORY)
    profile = local_profile(tmp_path / "profile")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(workdir / "Snakefile"),
            "-d",
            str(workdir),
            "--workflow-profile",
            str(profile),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert (workdir / "granted.txt").read_text().split() == ["2000", "4000"]


@pytest.mark.slow
def test_a_gpu_request_on_a_machine_without_gpu_stops_before_training(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    workdir = copy_workflow(tmp_path / "wf")
    out = snakemake(workdir, "--cores", "2", "results/runs/dpo_povid/adapter", "--set-resources", "train:gpu=1")
    assert out.returncode != 0
    log = (workdir / "logs/train/dpo_povid.log").read_text()
    assert "asks for 1 GPU(s)" in log and "torch.cuda.is_available() is False" in log
    assert "DPO on" not in log  # the trainer never started
    assert not (workdir / "results/runs/dpo_povid/train_log.jsonl").exists()


CACHED = {  # rule -> what it stores in the between-workflow cache (smoke study; downloads only run in the paper's)
    # (build_bdhs_pairs keeps its benchmark: directive, which Snakemake does not allow together with cache:)
    "build_world": "results/world/scenes.jsonl",
    "build_base_model": "resources/models/tinyllava-smoke",
    "build_pairs": "results/pairs/povid/pairs.parquet",
    "benchmark_items": "results/benchmarks/pope/items.jsonl",
    "reference_logps": "results/reference_logps/povid/logps.parquet",
}


def from_cache(path: Path, cache: Path) -> bool:
    """A file symlinked into the cache, or a directory whose every file is (Snakemake links file by file and
    adds its own .snakemake_timestamp marker)."""
    if path.is_dir():
        files = [p for p in path.rglob("*") if not p.is_dir() and p.name != ".snakemake_timestamp"]
    else:
        files = [path]
    return bool(files) and all(p.is_symlink() and p.resolve().is_relative_to(cache.resolve()) for p in files)


def written_logs(workdir: Path) -> set[str]:
    return {str(p.relative_to(workdir)) for p in (workdir / "logs").rglob("*") if p.is_file() and p.stat().st_size}


@pytest.mark.slow
def test_a_second_study_takes_the_expensive_artifacts_from_the_shared_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("SNAKEMAKE_OUTPUT_CACHE", str(cache))
    first, second = copy_workflow(tmp_path / "first"), copy_workflow(tmp_path / "second")
    out = snakemake(first, "--cores", "2", "--cache")
    assert out.returncode == 0, out.stderr[-5000:]
    assert "to cache" in out.stdout + out.stderr and any(cache.iterdir())
    out = snakemake(second, "--cores", "2", "--cache")
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-5000:]
    for rule, path in CACHED.items():
        assert from_cache(second / path, cache), f"{rule}: {path} not from the cache"
        assert f"Symlinking output file {path}" in log, rule  # a directory: one line per file in it
    # cached rules never ran in the second directory: their logs stay empty there (Snakemake only touches them);
    # every other job logged what it logged in the first run
    cached_logs = {log for log in written_logs(first) if log.split("/")[1].removesuffix(".log") in CACHED}
    assert cached_logs  # world and base model do log when they run
    assert written_logs(second) == written_logs(first) - cached_logs
    # what is not cached (training, evaluation) ran again in the second directory, on the cached inputs
    assert (second / "results/runs/dpo_povid/adapter").is_dir() and not (second / "results/runs").is_symlink()
    # same inputs, same seeds: same numbers. judge_cached only counts which job met a judgment first in the shared
    # judgment cache, which depends on the order parallel jobs happen to run in, so it is left out
    first_metrics, second_metrics = (
        pd.read_csv(w / "results/tables/metrics.csv").query("metric != 'judge_cached'") for w in (first, second)
    )
    pd.testing.assert_frame_equal(first_metrics.reset_index(drop=True), second_metrics.reset_index(drop=True))
