"""The claims scorecard: each headline claim of the paper as declarative checks over
metrics.csv, judged holds / does not hold / not measured, with the numbers each verdict used.

Claims live in a data file (workflow/resources/claims.yaml), one entry per claim::

    - id: 1
      claim: Offline DPO on full POVID raises POPE and MMHAL-V but lowers LLaVA-W and MMVet.
      table: table2        # the paper table its numbers come from (for the verdict on the paper's numbers)
      checks:
        - {left: dpo_povid, op: ">", right: base, column: POPE}
        - {left: [dpo_vlfeedback, dpo_povid], op: "<", right: base, column: MMVet}   # every left variant
        - {best: online_bdhs_povid, among: [dpo_povid, ipo_povid], column: MMVet}  # highest of them
        - {left: ipo_povid, op: ">=", right: dpo_povid, column: POPE, margin: 1.0}   # within 1 point
        - {left: rm_povid, op: "<", value: 0.5, column: "rm:rlhfv"}   # against a constant (here: chance)
        - {stable: [ppo_vlfeedback_rm], expect: true}                # RL runs' stability verdicts
    - id: 21
      claim: ...
      not_measured: the reason this workflow cannot check it

Columns are the labels of ``report.columns`` and values are in their display units (the paper's units), so a
margin reads in the paper's units too. Two more kinds of column serve the reward-model claims (Table 7,
``mmalign.report.reward_table``): ``rm:<pair set>``, a reward model's accuracy on that set's held-out split, and
``generalisation``, its mean accuracy on the held-out splits of the sets it did not train on. A ``stable`` check
reads the RL runs' stability verdicts (``mmalign.report.stability``; the paper's: Table 8's ``stable`` column).
Checks compare directions only, never absolute values, so the same claims apply to the synthetic default study.

Our own numbers are judged with the paired interval of each difference (``mmalign.report.uncertainty``: items
resampled jointly for both sides, and seeds when a variant has replicates): a comparison *holds* when the interval
excludes zero in the claimed direction, *does not hold* when it excludes zero the other way, and is
*inconclusive* otherwise (or when the difference has no interval, e.g. too few items). A claim does not hold as
soon as one comparison does not; else it is not measured when a number is missing (a variant not run, a
benchmark not evaluated); else inconclusive when one comparison is; else it holds. The paper's published
numbers are single runs with no items to resample: they are judged on the numbers alone, as before.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import yaml

from .metrics import Evaluations
from .reward_table import GENERALISATION, RM_COLUMN_PREFIX, RewardAccuracies
from .stability import NOT_STABLE, stable_runs
from .tables import Metrics, read_published
from .uncertainty import Interval, Settings, interval, paired_difference

HOLDS, FAILS, NOT_MEASURED, INCONCLUSIVE = "holds", "does not hold", "not measured", "inconclusive"
STABLE = "stable"  # the pseudo-column of an RL run's stability verdict (1.0 stable, 0.0 not)
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE, NOT_MEASURED)
COMPARISON_COLUMNS = ["id", "column", "left", "right", "diff", "low", "high", "items", "note", "left_seed_sd",
                      "right_seed_sd", "paper_diff", "paper_in_interval"]  # fmt: skip
OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}  # fmt: skip

Lookup = Callable[[str, str], float]  # (variant, column label) -> value in display units, NaN if missing
Why = Callable[[str, str], str]  # (variant, column label) -> why its number is missing ("not run", "n/a")
# (left variant, right variant or a constant, column label) -> the (paired) interval of left - right in display
# units
Compare = Callable[[str, "str | float", str], Interval]


def _missing(variant: str, column: str) -> str:
    return "missing"


class ClaimError(ValueError):
    pass


def load_claims(path: str | Path, columns: dict[str, dict]) -> list[dict]:
    """Read and check the claims file: every check well formed and naming a configured column."""
    claims = yaml.safe_load(Path(path).read_text())
    problems = []
    for claim in claims:
        where = f"claim {claim.get('id')}"
        if not claim.get("claim"):
            problems.append(f"{where}: no 'claim' text")
        if bool(claim.get("checks")) == bool(claim.get("not_measured")):
            problems.append(f"{where}: needs either 'checks' or a 'not_measured' reason")
        for check in claim.get("checks") or []:
            if "stable" in check:
                if not isinstance(check["stable"], list) or not isinstance(check.get("expect"), bool):
                    problems.append(f"{where}: a 'stable' check needs a list of variants and 'expect' true or false")
                continue
            if check.get("column") not in columns and not is_reward_column(check.get("column")):
                problems.append(f"{where}: column {check.get('column')!r} is not in report.columns")
            if "best" in check:
                if not isinstance(check.get("among"), list):
                    problems.append(f"{where}: a 'best' check needs an 'among' list")
            elif check.get("op") not in OPS or "left" not in check or ("right" in check) == ("value" in check):
                problems.append(f"{where}: a check needs left, op in {sorted(OPS)} and right or value: {check}")
    if problems:
        raise ClaimError(f"{path}:\n  " + "\n  ".join(problems))
    return claims


def is_reward_column(column) -> bool:
    """A claims column read from Table 7 (a reward model's held-out accuracy), not from metrics.csv."""
    return isinstance(column, str) and (column.startswith(RM_COLUMN_PREFIX) or column == GENERALISATION)


def stability_outcome(check: dict, lookup: Lookup, why: Why) -> list[tuple[bool | None, str]]:
    """Each named RL run's verdict (1.0 stable, 0.0 not, NaN not run) against the expected one: not an estimate,
    so no interval; a run that did not run leaves the claim not measured."""
    results = []
    for variant in check["stable"]:
        value = lookup(variant, STABLE)
        expected = "stable" if check["expect"] else "not stable"
        if math.isnan(value):
            results.append((None, f"{variant} {why(variant, STABLE)} (expected {expected})"))
            continue
        text = f"{variant} trained {'stably' if value else 'not stably'} (expected {expected})"
        results.append((bool(value) == check["expect"], text))
    return results


def interval_outcome(diff: Interval, op: str, margin: float = 0.0) -> bool | str:
    """A comparison ``left op right`` (lenient by ``margin``) judged on the interval of left - right: True (holds),
    False (does not hold) or INCONCLUSIVE."""
    slack = margin if op in (">", ">=") else -margin
    low, high = diff.low + slack, diff.high + slack
    if not diff.measured:
        return INCONCLUSIVE
    if op in (">", ">="):
        return True if (low > 0 or (op == ">=" and low >= 0)) else False if high < 0 else INCONCLUSIVE
    return True if (high < 0 or (op == "<=" and high <= 0)) else False if low > 0 else INCONCLUSIVE


def _shown_interval(diff: Interval) -> str:
    if not diff.measured:
        return f"{diff.value:+.2f} [no interval: {diff.note}]"
    note = f"; {diff.note}" if diff.note else ""
    return f"{diff.value:+.2f} [{diff.low:+.2f}, {diff.high:+.2f}{note}]"


def evaluate_check(
    check: dict, lookup: Lookup, why: Why = _missing, compare: Compare | None = None
) -> list[tuple[bool | str | None, str]]:
    """(outcome, the numbers it used) per comparison: True / False / INCONCLUSIVE, None when a number is missing.
    Without ``compare`` (single numbers, the paper's) the numbers alone decide."""
    if "stable" in check:
        return stability_outcome(check, lookup, why)
    column = check["column"]

    def shown(variant: str, value: float) -> str:
        return f"{variant} {why(variant, column) if math.isnan(value) else f'{value:.2f}'}"

    def judged(left: str, right: str | float, op: str, margin: float, point: bool) -> tuple[bool | str, str]:
        if compare is None:
            return point, ""
        diff = compare(left, right, column)
        return interval_outcome(diff, op, margin), f" (diff {_shown_interval(diff)})"

    if "best" in check:
        lowest = check.get("lowest", False)
        contenders = [check["best"], *[v for v in check["among"] if v != check["best"]]]
        values = {v: lookup(v, column) for v in contenders}
        text = f"{column}: {check['best']} {'lowest' if lowest else 'highest'} of " + ", ".join(
            shown(v, x) for v, x in values.items()
        )
        if any(math.isnan(x) for x in values.values()):
            return [(None, text)]
        target = values[check["best"]]
        outcomes, details = [], []
        for other, x in values.items():
            if other == check["best"]:
                continue
            op = "<=" if lowest else ">="
            outcome, detail = judged(check["best"], other, "<" if lowest else ">", 0.0, OPS[op](target, x))
            outcomes.append(outcome)
            details.append(f"vs {other}{detail}" if detail else "")
        if compare is not None:
            text += "; " + ", ".join(details)
        overall = False if False in outcomes else INCONCLUSIVE if INCONCLUSIVE in outcomes else True
        return [(overall, text)]
    margin = float(check.get("margin", 0.0))
    results = []
    lefts = check["left"] if isinstance(check["left"], list) else [check["left"]]
    constant = "value" in check  # a comparison with a fixed number (e.g. chance accuracy 0.5)
    right_name = float(check["value"]) if constant else check["right"]
    right = right_name if constant else lookup(right_name, column)
    for left_variant in lefts:
        left = lookup(left_variant, column)
        right_shown = f"{right:g}" if constant else shown(right_name, right)
        text = f"{column}: {shown(left_variant, left)} {check['op']} {right_shown}"
        if margin:
            text += f" (margin {margin:g})"
        if math.isnan(left) or math.isnan(right):
            results.append((None, text))
            continue
        slack = margin if check["op"] in (">", ">=") else -margin  # a margin makes the comparison lenient
        point = OPS[check["op"]](left + slack, right)
        outcome, detail = judged(left_variant, right_name, check["op"], margin, point)
        results.append((outcome, text + detail))
    return results


MARKS = {True: "✓ ", False: "✗ ", INCONCLUSIVE: "~ ", None: "? "}


def evaluate_claim(claim: dict, lookup: Lookup, why: Why = _missing, compare: Compare | None = None) -> dict:
    if claim.get("not_measured"):
        return {"verdict": NOT_MEASURED, "measured": "0/0", "evidence": "", "reason": claim["not_measured"]}
    outcomes = [r for check in claim["checks"] for r in evaluate_check(check, lookup, why, compare)]
    failed = [text for v, text in outcomes if v is False]
    missing = [text for v, text in outcomes if v is None]
    unsure = [text for v, text in outcomes if v == INCONCLUSIVE]
    if failed:
        verdict, reason = FAILS, "fails: " + "; ".join(failed)
    elif missing:
        verdict, reason = NOT_MEASURED, f"{len(missing)} of {len(outcomes)} comparisons lack a number"
    elif unsure:
        verdict, reason = INCONCLUSIVE, f"{len(unsure)} of {len(outcomes)} comparisons: the interval includes 0"
    else:
        verdict, reason = HOLDS, ""
    measured = sum(v is not None for v, _ in outcomes)
    evidence = "; ".join(MARKS[v] + text for v, text in outcomes)
    return {"verdict": verdict, "measured": f"{measured}/{len(outcomes)}", "evidence": evidence, "reason": reason}


def paper_lookup(published: pd.DataFrame, preferred_table: str | None) -> Lookup:
    """The paper's number for (variant, column): from the claim's own table first (the paper's tables do not
    always agree with each other, e.g. Table 9's baseline), else from the first table that has it."""
    values: dict[tuple[str, str, str], float] = {}
    first: dict[tuple[str, str], float] = {}
    for r in published.itertuples(index=False):
        values[(r.table, r.row, r.column)] = float(r.value)
        first.setdefault((r.row, r.column), float(r.value))

    def lookup(variant: str, column: str) -> float:
        return values.get((preferred_table, variant, column), first.get((variant, column), math.nan))

    return lookup


def paper_differences(comparisons: pd.DataFrame, claims: list[dict], published: pd.DataFrame) -> list[float]:
    """Per comparison (``id``, ``column``, ``left``, ``right``), the paper's own left - right on its published
    numbers, read as its verdict reads them (``paper_lookup``: the claim's own table first); a constant right side
    (a number, or a number read back from a CSV) is subtracted as is. NaN where the paper has no number."""
    tables = {claim["id"]: claim.get("table") for claim in claims}
    lookups = {table: paper_lookup(published, table) for table in set(tables.values()) | {None}}
    differences = []
    for row in comparisons.itertuples():
        lookup = lookups[tables.get(row.id)]
        try:
            right = float(row.right)  # a check against a constant
        except (TypeError, ValueError):
            right = lookup(row.right, row.column)
        differences.append(lookup(row.left, row.column) - right)
    return differences


def paper_in_interval(comparisons: pd.DataFrame) -> list[bool | None]:
    """Does the comparison's interval contain the paper's own difference? None where either is missing. An
    interval that contains 0 but not the paper's difference measured an effect smaller than the paper's."""
    return [
        None if math.isnan(low) or math.isnan(high) or math.isnan(paper) else bool(low <= paper <= high)
        for low, high, paper in zip(comparisons["low"], comparisons["high"], comparisons["paper_diff"])
    ]


def smaller_than_paper(comparisons: pd.DataFrame) -> tuple[int, int]:
    """(comparisons whose interval includes 0, of those the ones whose interval excludes the paper's difference)."""
    undecided = comparisons[(comparisons["low"] <= 0) & (comparisons["high"] >= 0)]
    return len(undecided), int((undecided["paper_in_interval"] == False).sum())  # noqa: E712 (None is neither)


def paired_compare(
    evals: Evaluations, columns: dict[str, dict], groups: dict[str, list[str]], settings: Settings
) -> Compare:
    """``Compare`` on our evaluations: the paired interval of left - right in the column's display units; a
    replicated variant (``groups``) is the mean of its seed runs."""

    def compare(left: str, right: str | float, column: str) -> Interval:
        spec = columns[column]
        benchmark, key = spec["benchmark"], (str(spec.get("subset", "all")), spec["metric"])
        if isinstance(right, float):  # left against a constant in display units: left's own interval, shifted
            runs = groups.get(left, [left])
            if not all(evals.has(run, benchmark) for run in runs):
                return Interval(math.nan, note=f"{left} has no item scores for {column}")
            own = interval([evals.scores(run, benchmark) for run in runs], key, settings, left)
            return own.scaled(spec.get("scale", 1.0)).shifted(right)
        sides = []
        for name in (left, right):
            runs = groups.get(name, [name])
            scores = [evals.scores(run, benchmark) if evals.has(run, benchmark) else None for run in runs]
            if any(s is None or key not in s.metrics for s in scores):
                return Interval(math.nan, note=f"{name} has no item scores for {column}")
            sides.append(scores)
        diff = paired_difference(sides[0], sides[1], key, settings, (left, right, benchmark))
        return diff.scaled(spec.get("scale", 1.0))

    return compare


def reward_compare(accuracies: RewardAccuracies, settings: Settings) -> Compare:
    """``Compare`` on Table 7's numbers: two reward models' accuracies (or generalisations), or one against a
    constant; each model's held-out pairs resampled (``RewardAccuracies``)."""

    def compare(left: str, right: str | float, column: str) -> Interval:
        if isinstance(right, float):
            return accuracies.interval(left, column, settings).shifted(right)
        return accuracies.difference(left, right, column, settings)

    return compare


def routed(metrics_compare: Compare | None, rewards_compare: Compare | None) -> Compare | None:
    """One ``Compare`` for the scorecard: reward-model columns to Table 7's, every other to metrics.csv's."""
    if metrics_compare is None:
        return None

    def compare(left: str, right: str | float, column: str) -> Interval:
        if is_reward_column(column):
            if rewards_compare is None:
                return Interval(math.nan, note="no reward models in this study")
            return rewards_compare(left, right, column)
        return metrics_compare(left, right, column)

    return compare


def _recorded(compare: Compare | None, claim_id, into: list[dict] | None) -> Compare | None:
    if compare is None or into is None:
        return compare

    def recording(left: str, right: str | float, column: str) -> Interval:
        diff = compare(left, right, column)
        into.append(
            {"id": claim_id, "column": column, "left": left, "right": right, "diff": diff.value, "low": diff.low,
             "high": diff.high, "items": diff.items, "note": diff.note}
        )  # fmt: skip
        return diff

    return recording


def scorecard(
    claims: list[dict],
    ours: Lookup,
    published: pd.DataFrame | None = None,
    why: Why = _missing,
    compare: Compare | None = None,
    comparisons: list[dict] | None = None,
) -> pd.DataFrame:
    """One row per claim: our verdict with its numbers (with ``compare``: judged on paired intervals, and
    ``point_verdict`` = the same checks on our numbers alone) and, given the published numbers, the verdict the
    same checks give on the paper's own numbers (single runs). ``comparisons`` collects every paired difference
    used: claim id, column, left, right and the interval."""
    rows = []
    for claim in claims:
        result = evaluate_claim(claim, ours, why, _recorded(compare, claim["id"], comparisons))
        row = {"id": claim["id"], "claim": claim["claim"], **result}
        if compare is not None:
            row["point_verdict"] = evaluate_claim(claim, ours, why)["verdict"]
        if published is not None:
            paper = evaluate_claim(claim, paper_lookup(published, claim.get("table")))
            row["paper_verdict"] = paper["verdict"]
            row["paper_evidence"] = paper["evidence"]
        row["note"] = claim.get("note", "")
        rows.append(row)
    return pd.DataFrame(rows)


def markdown_scorecard(
    card: pd.DataFrame, study: str, level: float | None = None, comparisons: pd.DataFrame | None = None
) -> str:
    counts = card["verdict"].value_counts()
    summary = ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS if counts.get(v, 0) or v != INCONCLUSIVE)
    with_point = "point_verdict" in card.columns
    with_paper = "paper_verdict" in card.columns
    header = [
        "#",
        "claim",
        f"{study}" + (f" ({level:.0%} paired intervals)" if with_point and level else ""),
        *(["on our numbers alone"] if with_point else []),
        *(["on the paper's numbers (single runs)"] if with_paper else []),
        "numbers used / reason",
    ]
    lines = [
        f"### Claims scorecard ({study})",
        "",
        f"{len(card)} claims: {summary}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for r in card.itertuples(index=False):
        detail = f"{r.reason}: {r.evidence}" if r.verdict == NOT_MEASURED and r.evidence else r.evidence or r.reason
        if r.note:
            detail += f" — note: {r.note}"
        cells = [
            str(r.id),
            r.claim,
            f"**{r.verdict}**",
            *([r.point_verdict] if with_point else []),
            *([r.paper_verdict] if with_paper else []),
            detail,
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    lines.append("")
    lines.append(
        "✓ = comparison holds, ✗ = fails, ~ = inconclusive (the interval of the difference includes 0), ? = a "
        "number is missing (`not run`: the variant is not in this study; `n/a`: its benchmark was not evaluated). "
        "`diff` = left - right [interval], paired over items (and seeds). Checks compare directions only; values "
        "are in the paper's units."
    )
    if comparisons is not None and "paper_in_interval" in comparisons.columns:
        undecided, smaller = smaller_than_paper(comparisons)
        lines.append("")
        lines.append(
            f"Of the {undecided} comparisons whose interval includes 0, {smaller} exclude the paper's own difference "
            "(`paper_diff` in `claims_comparisons.csv`): there this study measured an effect smaller than the one "
            "the paper's single runs show, rather than one it could not measure."
        )
    return "\n".join(lines) + "\n"


def write_scorecard(
    metrics_csv,
    claims_path,
    columns: dict[str, dict],
    study: str,
    out_csv,
    out_md,
    published_csv=None,
    evals: Evaluations | None = None,
    groups: dict[str, list[str]] | None = None,
    settings: Settings | None = None,
    out_comparisons=None,
    reward_accuracy_paths=(),
    stability_paths=(),
) -> pd.DataFrame:
    """The scorecard files; with ``evals`` (our item scores) each comparison is judged on its paired interval,
    and ``out_comparisons`` lists them with the seed spread of either side (``left_seed_sd``, ``right_seed_sd``:
    NaN for a variant with one seed), to read the noise of training against the effects the claims test."""
    groups = groups or {}
    stable = stable_runs(stability_paths, groups)
    unstable = {v: NOT_STABLE for v, ok in stable.items() if not ok}
    metrics = Metrics.read(metrics_csv, unstable)  # an unstable RL run's numbers are not compared
    rewards = RewardAccuracies.read(reward_accuracy_paths) if reward_accuracy_paths else None
    claims = load_claims(claims_path, columns)
    published = read_published(published_csv) if published_csv else None
    settings = settings or Settings()
    compare = routed(
        paired_compare(evals, columns, groups, settings) if evals is not None else None,
        reward_compare(rewards, settings) if rewards is not None else None,
    )

    def ours(variant: str, column: str) -> float:
        if column == STABLE:
            return float(stable[variant]) if variant in stable else math.nan
        if is_reward_column(column):
            return rewards.value(variant, column) if rewards is not None else math.nan
        return metrics.value(variant, columns[column])

    def why(variant: str, column: str) -> str:
        if column == STABLE:
            return "not run"
        if is_reward_column(column):
            return "not run" if rewards is None or not rewards.has(variant) else "n/a"
        return metrics.status(variant, columns[column])

    comparisons: list[dict] = []
    card = scorecard(claims, ours, published, why, compare, comparisons)
    card.to_csv(out_csv, index=False)
    frame = None
    if out_comparisons is not None:
        frame = pd.DataFrame(comparisons, columns=COMPARISON_COLUMNS[:9])
        for side in ("left", "right"):
            frame[f"{side}_seed_sd"] = [
                metrics.seed_sd(v, columns[c]) if c in columns and isinstance(v, str) else math.nan
                for v, c in zip(frame[side], frame["column"])
            ]
        if published is not None:  # beside each interval, the difference the paper's own numbers show
            frame["paper_diff"] = paper_differences(frame, claims, published)
            frame["paper_in_interval"] = paper_in_interval(frame)
        frame.to_csv(out_comparisons, index=False)
    if compare is None:  # single numbers: no intervals to read the paper's difference against
        Path(out_md).write_text(markdown_scorecard(card, study))
    else:
        Path(out_md).write_text(markdown_scorecard(card, study, settings.level, frame))
    return card
