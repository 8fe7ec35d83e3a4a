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
    - id: 17
      claim: ...
      not_measured: reward models are not trained in this workflow

Columns are the labels of ``report.columns`` and values are in their display units (the paper's units), so a
margin reads in the paper's units too. Checks compare directions only, never absolute values, so the same
claims apply to the synthetic default study. A claim holds when every check holds; it does not hold as soon as
one measured check fails; otherwise, when a number is missing (a variant not run, a benchmark not evaluated),
it is not measured.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import yaml

from .tables import Metrics, read_published

HOLDS, FAILS, NOT_MEASURED = "holds", "does not hold", "not measured"
OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}  # fmt: skip

Lookup = Callable[[str, str], float]  # (variant, column label) -> value in display units, NaN if missing
Why = Callable[[str, str], str]  # (variant, column label) -> why its number is missing ("not run", "n/a")


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
            if check.get("column") not in columns:
                problems.append(f"{where}: column {check.get('column')!r} is not in report.columns")
            if "best" in check:
                if not isinstance(check.get("among"), list):
                    problems.append(f"{where}: a 'best' check needs an 'among' list")
            elif check.get("op") not in OPS or "left" not in check or "right" not in check:
                problems.append(f"{where}: a check needs left, right and op in {sorted(OPS)}: {check}")
    if problems:
        raise ClaimError(f"{path}:\n  " + "\n  ".join(problems))
    return claims


def evaluate_check(check: dict, lookup: Lookup, why: Why = _missing) -> list[tuple[bool | None, str]]:
    """(verdict, the numbers it used) per comparison; verdict None when a number is missing."""
    column = check["column"]

    def shown(variant: str, value: float) -> str:
        return f"{variant} {why(variant, column) if math.isnan(value) else f'{value:.2f}'}"

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
        others = [x for v, x in values.items() if v != check["best"]]
        holds = all(target <= x for x in others) if lowest else all(target >= x for x in others)
        return [(holds, text)]
    margin = float(check.get("margin", 0.0))
    results = []
    lefts = check["left"] if isinstance(check["left"], list) else [check["left"]]
    right = lookup(check["right"], column)
    for left_variant in lefts:
        left = lookup(left_variant, column)
        text = f"{column}: {shown(left_variant, left)} {check['op']} {shown(check['right'], right)}"
        if margin:
            text += f" (margin {margin:g})"
        if math.isnan(left) or math.isnan(right):
            results.append((None, text))
            continue
        slack = margin if check["op"] in (">", ">=") else -margin  # a margin makes the comparison lenient
        results.append((OPS[check["op"]](left + slack, right), text))
    return results


def evaluate_claim(claim: dict, lookup: Lookup, why: Why = _missing) -> dict:
    if claim.get("not_measured"):
        return {"verdict": NOT_MEASURED, "measured": "0/0", "evidence": "", "reason": claim["not_measured"]}
    outcomes = [r for check in claim["checks"] for r in evaluate_check(check, lookup, why)]
    verdicts = [v for v, _ in outcomes]
    failed = [text for v, text in outcomes if v is False]
    missing = [text for v, text in outcomes if v is None]
    if failed:
        verdict, reason = FAILS, "fails: " + "; ".join(failed)
    elif missing:
        verdict, reason = NOT_MEASURED, f"{len(missing)} of {len(outcomes)} comparisons lack a number"
    else:
        verdict, reason = HOLDS, ""
    measured = sum(v is not None for v in verdicts)
    evidence = "; ".join(("✓ " if v else "✗ " if v is False else "? ") + text for v, text in outcomes)
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


def scorecard(
    claims: list[dict], ours: Lookup, published: pd.DataFrame | None = None, why: Why = _missing
) -> pd.DataFrame:
    """One row per claim: our verdict with its numbers and, given the published numbers, the verdict the same
    checks give on the paper's own numbers."""
    rows = []
    for claim in claims:
        result = evaluate_claim(claim, ours, why)
        row = {"id": claim["id"], "claim": claim["claim"], **result}
        if published is not None:
            paper = evaluate_claim(claim, paper_lookup(published, claim.get("table")))
            row["paper_verdict"] = paper["verdict"]
            row["paper_evidence"] = paper["evidence"]
        row["note"] = claim.get("note", "")
        rows.append(row)
    return pd.DataFrame(rows)


def markdown_scorecard(card: pd.DataFrame, study: str) -> str:
    counts = card["verdict"].value_counts()
    summary = ", ".join(f"{counts.get(v, 0)} {v}" for v in (HOLDS, FAILS, NOT_MEASURED))
    with_paper = "paper_verdict" in card.columns
    header = ["#", "claim", f"{study}", *(["on the paper's numbers"] if with_paper else []), "numbers used / reason"]
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
        cells = [str(r.id), r.claim, f"**{r.verdict}**", *([r.paper_verdict] if with_paper else []), detail]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    lines.append("")
    lines.append(
        "✓ = comparison holds, ✗ = fails, ? = a number is missing (`not run`: the variant is not in this "
        "study; `n/a`: its benchmark was not evaluated). Checks compare directions only; values are in the "
        "paper's units."
    )
    return "\n".join(lines) + "\n"


def write_scorecard(
    metrics_csv, claims_path, columns: dict[str, dict], study: str, out_csv, out_md, published_csv=None
) -> pd.DataFrame:
    metrics = Metrics.read(metrics_csv)
    claims = load_claims(claims_path, columns)
    published = read_published(published_csv) if published_csv else None
    card = scorecard(
        claims,
        lambda variant, column: metrics.value(variant, columns[column]),
        published,
        lambda variant, column: metrics.status(variant, columns[column]),
    )
    card.to_csv(out_csv, index=False)
    Path(out_md).write_text(markdown_scorecard(card, study))
    return card
