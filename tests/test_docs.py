"""The docs name only things that exist: every relative link and every repository path in backticks.

Checked files: README.md and docs/*.md. Paths under results/, resources/ and logs/ are workflow outputs and are
not checked. A path with a placeholder (<variant>, {variant}, *) is checked up to its last fixed directory.
"""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

TOP_LEVEL = (
    "Snakefile",
    "config/",
    "workflow/",
    "envs/",
    "profiles/",
    "tests/",
    "benchmarks/",
    "docs/",
    "README.md",
    "NOTES.md",
    "pyproject.toml",
    ".ci/",
)
# Short module paths such as `mmalign/train/dpo.py` name files of the library.
ALIASES = {"mmalign/": "workflow/scripts/mmalign/"}
EXTENSIONS = (".py", ".smk", ".yaml", ".md", ".csv", ".json", ".rst", ".toml", ".txt")
TEMPLATED_PATH = re.compile(r"[<{*\[]")
FENCED = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
SPAN = re.compile(r"`([^`\n]+)`")


def repo_paths(markdown: str) -> list[str]:
    """Repository paths named in inline backticks (fenced code blocks are skipped), aliases resolved."""
    paths = []
    for span in SPAN.findall(FENCED.sub("", markdown)):
        span = span.strip().split("::")[0]  # tests/test_x.py::test_name
        if " " in span or not ("/" in span or span.endswith(EXTENSIONS) or span == "Snakefile"):
            continue
        for alias, target in ALIASES.items():
            if span.startswith(alias):
                span = target + span[len(alias) :]
        if span.startswith(TOP_LEVEL):
            paths.append(span)
    return paths


def fixed_part(path: str) -> str:
    """The part of a path that must exist: all of it, or the directory before its first placeholder."""
    match = TEMPLATED_PATH.search(path)
    return path if match is None else path[: match.start()].rpartition("/")[0] + "/"


def link_targets(markdown: str) -> list[str]:
    """Relative link targets of a markdown text, without #anchors; web links and pure anchors left out."""
    targets = []
    for target in LINK.findall(FENCED.sub("", markdown)):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        targets.append(target.split("#")[0])
    return targets


def test_path_extraction_finds_repository_paths_and_skips_the_rest():
    text = (
        "See `workflow/rules/train.smk`, `mmalign/no_such_module.py`, `envs/*.yaml`, `Snakefile` and\n"
        "`tests/test_docs.py::test_x`; outputs like `results/tables/claims.md`, commands like\n"
        "`snakemake -n`, and keys like `variants.dpo_povid.beta` are not repository paths.\n"
        "```\nworkflow/ignored/in/a/fence.py\n```\n"
    )
    assert repo_paths(text) == [
        "workflow/rules/train.smk",
        "workflow/scripts/mmalign/no_such_module.py",
        "envs/*.yaml",
        "Snakefile",
        "tests/test_docs.py",
    ]
    missing = [p for p in repo_paths(text) if not (REPO / fixed_part(p)).exists()]
    assert missing == ["workflow/scripts/mmalign/no_such_module.py"]  # a wrong path is caught
    assert fixed_part("workflow/rules/{common,data}.smk") == "workflow/rules/"
    assert fixed_part("mmalign/evaluate/benchmarks/<kind>.py") == "mmalign/evaluate/benchmarks/"
    assert link_targets("[a](docs/x.md#part) [b](https://x.org) [c](#top)") == ["docs/x.md"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_named_repository_path_exists(doc):
    missing = [p for p in repo_paths(doc.read_text()) if not (REPO / fixed_part(p)).exists()]
    assert not missing, f"{doc.name} names paths that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_points_inside_the_repository_at_something_that_exists(doc):
    bad = []
    for target in link_targets(doc.read_text()):
        resolved = (doc.parent / target).resolve()
        if not resolved.is_relative_to(REPO) or not resolved.exists():
            bad.append(target)
    assert not bad, f"{doc.name} links to missing or outside files: {bad}"


def test_readme_is_short_links_every_docs_page_and_shows_the_ci_test_command():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    linked = set(link_targets(readme))
    assert {f"docs/{p.name}" for p in (REPO / "docs").glob("*.md")} <= linked
    ci_lines = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if "python -m pytest" in line]
    assert ci_lines, ".ci/run no longer runs pytest"
    command = ci_lines[-1][ci_lines[-1].index("python -m pytest") :].strip()
    assert command == "python -m pytest -ra"
    assert command in readme
