"""Tables 7 and 8 and claims 17 and 18: reward-model accuracy with intervals from hand-made held-out verdicts,
RL runs the stability rule rejected shown as "policy training not stable", and the claims judged on the paper's
numbers and on constructed ones."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from mmalign.report.claims import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_MEASURED,
    evaluate_claim,
    load_claims,
    reward_compare,
    write_scorecard,
)
from mmalign.report.reward_table import GENERALISATION, RewardAccuracies, write_reward_table
from mmalign.report.stability import NOT_STABLE, read_stability
from mmalign.report.tables import read_published, write_table
from mmalign.report.uncertainty import Settings
from test_report import COLUMNS, metrics_frame

REPO = Path(__file__).resolve().parents[1]
RESOURCES = REPO / "workflow" / "resources"
CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
CLAIMS = {c["id"]: c for c in load_claims(RESOURCES / "claims.yaml", COLUMNS)}
SETTINGS = Settings(bootstrap=400, level=0.95, seed=0, min_items=20)
TABLE7 = CONFIG["report"]["reward_table"]
TRAINED_ON = {"rm_povid": ["povid"], "rm_rlhfv": ["rlhfv"], "rm_povid_rlhfv": ["povid", "rlhfv"],
              "rm_vlfeedback": ["vlfeedback"]}  # fmt: skip


def write_heldout(root: Path, rm: str, pairset: str, correct: list[bool]) -> Path:
    """What rule eval_reward_model writes for one cell: the summary JSON and each pair's verdict."""
    out = root / rm / "heldout"
    out.mkdir(parents=True, exist_ok=True)
    summary = {"reward_model": rm, "pairset": pairset, "trained_on": TRAINED_ON[rm], "pairs": len(correct),
               "correct": sum(correct), "accuracy": sum(correct) / len(correct)}  # fmt: skip
    (out / f"{pairset}.json").write_text(json.dumps(summary))
    lines = [
        json.dumps({"id": str(i), "chosen": float(c), "rejected": 0.5, "correct": c}) for i, c in enumerate(correct)
    ]
    (out / f"{pairset}.jsonl").write_text("\n".join(lines) + "\n")
    return out / f"{pairset}.json"


def accuracy_files(root: Path, accuracies: dict[tuple[str, str], float], n: int = 200) -> list[Path]:
    """Held-out verdicts with exactly the given accuracy per (rm, pair set)."""
    return [
        write_heldout(root, rm, pairset, [i < round(acc * n) for i in range(n)])
        for (rm, pairset), acc in accuracies.items()
    ]


PAPER_LIKE = {  # the paper's Table 7 (LLaVA 1.6 rows; RLHF-V from LLaVA 1.5)
    ("rm_povid", "povid"): 0.99, ("rm_povid", "rlhfv"): 0.34, ("rm_povid", "vlfeedback"): 0.59,
    ("rm_rlhfv", "povid"): 0.12, ("rm_rlhfv", "rlhfv"): 0.86, ("rm_rlhfv", "vlfeedback"): 0.52,
    ("rm_povid_rlhfv", "povid"): 0.97, ("rm_povid_rlhfv", "rlhfv"): 0.68, ("rm_povid_rlhfv", "vlfeedback"): 0.63,
    ("rm_vlfeedback", "povid"): 0.76, ("rm_vlfeedback", "rlhfv"): 0.53, ("rm_vlfeedback", "vlfeedback"): 0.82,
}  # fmt: skip


# ------------------------------------------------------------------------------------------------ Table 7


def test_table7_reads_accuracy_generalisation_and_intervals_from_the_heldout_verdicts(tmp_path):
    paths = accuracy_files(tmp_path / "rm", PAPER_LIKE)
    frame = write_reward_table(
        paths, "table7", TABLE7, SETTINGS, tmp_path / "t.csv", tmp_path / "t.md", tmp_path / "t.png",
        tmp_path / "t.svg", RESOURCES / "paper_results.csv",
    )  # fmt: skip
    assert frame.loc["POVID", "RLHF-V"] == pytest.approx(0.34)
    assert frame.loc["POVID", GENERALISATION] == pytest.approx((0.34 + 0.59) / 2)  # the sets it did not train on
    assert frame.loc["POVID + RLHF-V", GENERALISATION] == pytest.approx(0.63)  # only VLFeedback is off-diagonal
    low, high = frame.loc["POVID", "RLHF-V (low)"], frame.loc["POVID", "RLHF-V (high)"]
    assert low < 0.34 < high and 0.05 < high - low < 0.2  # ~ 2 x 1.96 x sqrt(.34 x .66 / 200) = 0.13
    assert frame.loc["VLFeedback", "POVID (paper)"] == pytest.approx(0.76)
    md = (tmp_path / "t.md").read_text()
    assert "| POVID | 0.99 ± " in md and "(paper 0.99)" in md and "0.5 is chance" in md
    assert (tmp_path / "t.png").stat().st_size > 0


def test_a_heldout_split_with_too_few_pairs_has_no_interval_never_a_zero_width(tmp_path):
    path = write_heldout(tmp_path, "rm_povid", "povid", [True] * 5 + [False] * 5)
    number = RewardAccuracies.read([path]).interval("rm_povid", "rm:povid", SETTINGS)
    assert number.value == 0.5 and math.isnan(number.low) and "min_items 20" in number.note


def test_rm_difference_is_an_interval_over_both_models_pairs(tmp_path):
    paths = accuracy_files(tmp_path, {("rm_povid", "rlhfv"): 0.30, ("rm_vlfeedback", "rlhfv"): 0.70})
    accuracies = RewardAccuracies.read(paths)
    diff = accuracies.difference("rm_vlfeedback", "rm_povid", "rm:rlhfv", SETTINGS)
    assert diff.value == pytest.approx(0.40) and 0.25 < diff.low < diff.high < 0.55


# ------------------------------------------------------------------------------------------------ Table 8


def train_metrics(root: Path, variant: str, stable: bool, reasons=()) -> Path:
    path = root / variant / "train_metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"variant": variant, "stability": {"stable": stable, "reasons": list(reasons)}}))
    return path


TABLE8 = CONFIG["report"]["tables"]["table8"]
RL_RUNS = [  # (variant, display POPE, MMHAL, Recall)
    ("base", 86.0, 2.9, 68.0), ("dpo_povid", 88.0, 3.2, 73.0), ("ppo_povid_rm", 10.0, 0.1, 1.0),
    ("rloo_povid_rm", 12.0, 0.2, 2.0), ("ppo_vlfeedback_rm", 87.0, 3.0, 67.0), ("rloo_vlfeedback_rm", 87.5, 2.9, 65.0),
]  # fmt: skip


def rl_metrics(runs=RL_RUNS):
    rows = []
    for variant, pope, mmhal, recall in runs:
        rows += [(variant, "pope", "all", "accuracy", pope / 100), (variant, "mmhal", "all", "score", mmhal),
                 (variant, "objhal", "all", "recall", recall / 100)]  # fmt: skip
    return metrics_frame(rows)


def test_table8_shows_policy_training_not_stable_instead_of_numbers(tmp_path):
    rm_runs = tmp_path / "runs"
    stability = [
        train_metrics(rm_runs, "ppo_povid_rm", False, ["mean KL 3.1 > max_kl 1.0 over the last third"]),
        train_metrics(rm_runs, "rloo_povid_rm", False, ["response length 0.4 < 0.2 x its first value 9.0"]),
        train_metrics(rm_runs, "ppo_vlfeedback_rm", True),
        train_metrics(rm_runs, "rloo_vlfeedback_rm", True),
    ]
    metrics_csv = tmp_path / "metrics.csv"
    rl_metrics().to_csv(metrics_csv, index=False)
    unstable = read_stability(stability)
    frame = write_table(metrics_csv, "table8", TABLE8, COLUMNS, tmp_path / "t.csv", tmp_path / "t.md", None, unstable)
    assert math.isnan(frame.loc["PPO, RM: POVID, prompts: POVID", "POPE"])  # 10.0 is never shown
    assert frame.loc["PPO, RM: VLFeedback, prompts: POVID", "POPE"] == pytest.approx(87.0)
    assert frame.loc["RLOO, RM: POVID, prompts: POVID", "status"].startswith(NOT_STABLE)
    md = (tmp_path / "t.md").read_text()
    assert f"{NOT_STABLE} (mean KL 3.1 > max_kl 1.0" in md and "10.00" not in md


def test_a_replicated_rl_variant_is_not_stable_when_any_seed_is_not(tmp_path):
    paths = [train_metrics(tmp_path, "ppo_x/seed0", True), train_metrics(tmp_path, "ppo_x/seed1", False, ["nan"])]
    unstable = read_stability(paths, {"ppo_x": ["ppo_x/seed0", "ppo_x/seed1"]})
    assert unstable["ppo_x"] == f"{NOT_STABLE} (1 of 2 seeds)" and "ppo_x/seed0" not in unstable


# ------------------------------------------------------------------------------------------ claims 17, 18


def paper_verdict(claim_id: int) -> dict:
    from mmalign.report.claims import paper_lookup

    claim = CLAIMS[claim_id]
    return evaluate_claim(claim, paper_lookup(read_published(RESOURCES / "paper_results.csv"), claim["table"]))


@pytest.mark.parametrize("claim_id", [17, 18])
def test_claims_17_and_18_hold_on_the_papers_own_numbers(claim_id):
    result = paper_verdict(claim_id)
    assert result["verdict"] == HOLDS, result


def scorecard(tmp_path: Path, accuracies: dict, stable: dict[str, bool], runs=RL_RUNS):
    tmp_path.mkdir(parents=True, exist_ok=True)
    metrics_csv = tmp_path / "metrics.csv"
    rl_metrics(runs).to_csv(metrics_csv, index=False)
    card = write_scorecard(
        metrics_csv, RESOURCES / "claims.yaml", COLUMNS, "t", tmp_path / "c.csv", tmp_path / "c.md",
        reward_accuracy_paths=accuracy_files(tmp_path / "rm", accuracies),
        stability_paths=[train_metrics(tmp_path / "runs", v, ok) for v, ok in stable.items()],
    )  # fmt: skip
    return card.set_index("id")


PAPER_STABILITY = {"ppo_povid_rm": False, "rloo_povid_rm": False, "ppo_vlfeedback_rm": True, "rloo_vlfeedback_rm": True}


def test_claims_17_and_18_on_our_numbers_hold_fail_and_lack_numbers(tmp_path):
    card = scorecard(tmp_path / "a", PAPER_LIKE, PAPER_STABILITY)
    assert card.loc[17, "verdict"] == HOLDS and card.loc[18, "verdict"] == HOLDS
    assert "✓ rm:rlhfv: rm_povid 0.34 < 0.5" in card.loc[17, "evidence"]
    assert "✓ ppo_povid_rm trained not stably (expected not stable)" in card.loc[18, "evidence"]

    generalising = dict(PAPER_LIKE)
    generalising[("rm_povid", "rlhfv")] = 0.80  # the POVID RM now ranks RLHF-V pairs well
    card = scorecard(tmp_path / "b", generalising, {**PAPER_STABILITY, "ppo_povid_rm": True})
    assert card.loc[17, "verdict"] == FAILS and "✗ rm:rlhfv: rm_povid 0.80 < 0.5" in card.loc[17, "evidence"]
    assert card.loc[18, "verdict"] == FAILS and "✗ ppo_povid_rm trained stably" in card.loc[18, "evidence"]

    close = dict(PAPER_LIKE)
    close[("rm_povid", "rlhfv")] = 0.49  # below chance, but within its interval on 200 pairs
    accuracies = RewardAccuracies.read(accuracy_files(tmp_path / "c", close))
    compare = reward_compare(accuracies, SETTINGS)
    lookup = accuracies.value
    assert evaluate_claim(CLAIMS[17], lookup)["verdict"] == HOLDS  # on the numbers alone
    judged = evaluate_claim(CLAIMS[17], lookup, compare=compare)
    assert judged["verdict"] == INCONCLUSIVE and "~ rm:rlhfv: rm_povid 0.49 < 0.5 (diff -0.01 [" in judged["evidence"]

    without_rm = {k: v for k, v in PAPER_LIKE.items() if k[0] != "rm_rlhfv"}
    card = scorecard(tmp_path / "d", without_rm, {k: v for k, v in PAPER_STABILITY.items() if k != "ppo_povid_rm"})
    assert card.loc[17, "verdict"] == NOT_MEASURED and "rm_rlhfv not run" in card.loc[17, "evidence"]
    assert card.loc[18, "verdict"] == NOT_MEASURED and "ppo_povid_rm not run" in card.loc[18, "evidence"]


def test_an_unstable_rl_run_is_never_compared_on_its_numbers(tmp_path):
    runs = [r if r[0] != "ppo_vlfeedback_rm" else ("ppo_vlfeedback_rm", 10.0, 0.1, 1.0) for r in RL_RUNS]
    card = scorecard(tmp_path, PAPER_LIKE, {**PAPER_STABILITY, "ppo_vlfeedback_rm": False}, runs)
    evidence = card.loc[18, "evidence"]
    assert card.loc[18, "verdict"] == FAILS and "✗ ppo_vlfeedback_rm trained not stably" in evidence
    assert "ppo_vlfeedback_rm policy training not stable < dpo_povid" in evidence  # no number, no comparison


def test_claim_checks_against_a_constant_and_stability_are_validated(tmp_path):
    from mmalign.report.claims import ClaimError

    bad = tmp_path / "claims.yaml"
    bad.write_text(yaml.safe_dump([
        {"id": 1, "claim": "c", "checks": [{"left": "a", "op": "<", "column": "POPE"}]},
        {"id": 2, "claim": "c", "checks": [{"stable": "ppo", "expect": "yes"}]},
    ]))  # fmt: skip
    with pytest.raises(ClaimError) as err:
        load_claims(bad, COLUMNS)
    assert "claim 1: a check needs left, op" in str(err.value) and "claim 2: a 'stable' check needs" in str(err.value)


def test_generalisation_averages_only_the_sets_a_model_did_not_train_on(tmp_path):
    accuracies = RewardAccuracies.read(accuracy_files(tmp_path, PAPER_LIKE))
    assert accuracies.value("rm_vlfeedback", GENERALISATION) == pytest.approx(np.mean([0.76, 0.53]))
    assert accuracies.value("rm_unknown", GENERALISATION) != accuracies.value("rm_unknown", GENERALISATION)  # NaN
