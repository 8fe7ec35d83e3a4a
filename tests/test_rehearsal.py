"""The CPU rehearsal of config/paper.yaml (tests/rehearsal/run.py): every rule of the paper DAG runs on local
mirrors, a tiny LLaVA-NeXT and a real `transformers serve`. Slow: about 8 minutes on 2 cores."""

from __future__ import annotations

import json

import pytest

from rehearsal.run import prepare, rehearse, summarize

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("rehearsal")
    prepare(workdir)
    result = rehearse(workdir, cores=2)
    assert result["returncode"] == 0, (workdir / "snakemake.log").read_text()[-6000:]
    return workdir, summarize(workdir, result)


def test_every_rule_of_the_paper_dag_ran(rehearsal):
    _, summary = rehearsal
    assert summary["paper_rules_not_run"] == []
    assert all(summary["jobs_per_rule"][rule] >= 1 for rule in summary["paper_rules"])
    assert summary["jobs_per_rule"]["evaluate"] == 8 * 13  # base + 12 variants, every benchmark
    assert summary["report_returncode"] == 0 and summary["report_archive"]


def test_every_table_renders_with_the_papers_numbers_beside(rehearsal):
    workdir, summary = rehearsal
    # paper.yaml's 9 tables, Table 7 (reward models) and the scorecard
    assert "claims.md" in summary["tables"] and len(summary["tables"]) == 9 + 1 + 1
    table2 = (workdir / "results" / "tables" / "table2.md").read_text()
    assert "(paper 86.40" in table2  # LLaVA-1.6-7B's published POPE beside the rehearsal's
    assert "not run (paper" in table2  # a variant the rehearsal leaves out


def test_judges_talked_to_the_server_and_their_verdicts_are_cached_and_counted(rehearsal):
    _, summary = rehearsal
    served = summary["requests_served"]
    assert served.get(200, 0) >= 100 and set(served) == {200}
    cache = summary["judge_cache"]
    assert cache["openai:served/judge"] > 0 and cache["openai:served/random"] > 0
    judged = summary["judged"]
    # the trained judge's verdicts parse; the random model's garbage (the image-seeing judge) is counted unparsed
    assert judged["llavaw"]["judged"] > 0 and judged["mmvet"]["judged"] > 0 and judged["mmhal"]["judged"] > 0
    assert judged["mmhalv"]["judge_unparsed"] > 0 and judged["mmhalv"]["judged"] == 0
    assert all(counts["judge_failed"] == 0 for counts in judged.values())


def test_online_dpo_trained_on_annotated_pairs_and_the_llm_corrupter_answered(rehearsal):
    workdir, _ = rehearsal
    online = json.loads((workdir / "results/runs/online_dpo_povid/train_metrics.json").read_text())["online"]
    assert online["pairs/online_pairs"] > 0
    corrupted = json.loads((workdir / "results/pairs/vlfeedback_corrupted/manifest.json").read_text())
    assert corrupted["rows_kept"] == 8 and corrupted["extra"]["corrupter_calls"] >= 8


def test_downloads_are_manifested_and_the_base_model_is_llava_next(rehearsal):
    workdir, _ = rehearsal
    manifest = json.loads((workdir / "resources/models/llava-v1.6-vicuna-7b.manifest.json").read_text())
    assert manifest["repo_id"] == "llava-hf/llava-v1.6-vicuna-7b-hf" and manifest["source"].startswith("mirror")
    assert manifest["processor_settings"]["patch_size"] == 7 and all(len(f["sha256"]) == 64 for f in manifest["files"])
    config = json.loads((workdir / "resources/models/llava-v1.6-vicuna-7b/config.json").read_text())
    assert config["model_type"] == "llava_next"


def test_reward_models_and_rl_ran_on_llava_next(rehearsal):
    """Table 7 from four reward models on the tiny LLaVA-NeXT (AnyRes tiles through the scalar head), with the
    paper's numbers beside; RLOO and PPO trained against them, each with its stability verdict."""
    workdir, summary = rehearsal
    assert summary["jobs_per_rule"]["train_reward_model"] == 4 and summary["jobs_per_rule"]["eval_reward_model"] == 4
    table7 = (workdir / "results" / "tables" / "table7.md").read_text()
    assert "(paper 0.99)" in table7 and "(paper 0.12)" in table7  # POVID on POVID; the LLaVA-1.5 RLHF-V row
    for variant, method in (("rloo_vlfeedback_rm", "rloo"), ("ppo_povid_rm", "ppo")):
        metrics = json.loads((workdir / "results" / "runs" / variant / "train_metrics.json").read_text())
        assert metrics["method"] == method and metrics["steps"] == 2 and "stable" in metrics["stability"]
        assert metrics["reward_statistics"]["std"] > 0  # the reward model scored the dataset's answers
    assert "policy training" in (workdir / "results" / "tables" / "table8.md").read_text() or all(
        json.loads((workdir / "results" / "runs" / v / "train_metrics.json").read_text())["stable"]
        for v in ("rloo_vlfeedback_rm", "ppo_povid_rm")
    )  # a run the rule rejects reads "policy training not stable", never its numbers
