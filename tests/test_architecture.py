"""The library's two wings, read from its imports: the study's machinery never imports the synthetic world except
through mmalign.registry, no import circle exists (between modules or between packages), every rule's code hash
follows those boundaries, and an edit to the synthetic world reruns no job of the paper study."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mmalign.codehash import CodeVersions, job_entries
from mmalign.config import apply_defaults, expand_base_replicates, expand_replicates, expand_sweeps

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "workflow" / "scripts"
SYNTHETIC = "mmalign.synthetic"
REGISTRATIONS = "mmalign.registry"


# ------------------------------------------------------------------ reading imports (independently of the library)


def modules(root: Path = LIBRARY) -> dict[str, Path]:
    """Every module of the package: dotted name -> file (a package is its __init__.py)."""
    found = {}
    for path in sorted((root / "mmalign").rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules a module imports anywhere in it (module level or inside functions). ``from X import
    y`` names X.y when that is a module (a package importing its own submodule is no edge to itself), else X."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module
            submodules = {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known}
            out.update(submodules or {base})
    return {m for m in out if m in known and m != name}


def import_graph(root: Path = LIBRARY) -> dict[str, set[str]]:
    known = modules(root)
    return {name: imported(name, path, known) for name, path in known.items()}


def in_synthetic(module: str) -> bool:
    return module == SYNTHETIC or module.startswith(SYNTHETIC + ".")


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of the graph, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def package_of(module: str) -> str:
    """The unit of the package-level graph: a subpackage of mmalign, or a top-level module."""
    return ".".join(module.split(".")[:2])


def non_docstring_strings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
    ]


# ------------------------------------------------------------------------------------------- the boundaries


def boundary_offenders(root: Path = LIBRARY) -> tuple[dict, list]:
    """General-wing modules that import the synthetic package, and those (but the registrations) that name it in
    a string (a dynamic import)."""
    graph = import_graph(root)
    importing = {
        m: sorted(filter(in_synthetic, deps))
        for m, deps in graph.items()
        if not in_synthetic(m) and any(map(in_synthetic, deps))
    }
    naming = sorted(
        m
        for m, path in modules(root).items()
        if not in_synthetic(m) and m != REGISTRATIONS and any(SYNTHETIC in text for text in non_docstring_strings(path))
    )
    return importing, naming


def test_the_general_wing_never_imports_the_synthetic_world():
    importing, naming = boundary_offenders()
    assert not importing, f"general-wing modules importing {SYNTHETIC}: {importing}"
    assert not naming, f"only {REGISTRATIONS} may name {SYNTHETIC} modules: {naming}"
    registered = [t for t in non_docstring_strings(modules()[REGISTRATIONS]) if t.startswith(SYNTHETIC)]
    assert registered and all(t in modules() for t in registered), registered  # every registration exists


def test_no_import_circle_between_modules_or_packages():
    graph = import_graph()
    assert find_cycle(graph) is None, f"import circle: {' -> '.join(find_cycle(graph))}"
    packages: dict[str, set[str]] = {}
    for module, deps in graph.items():
        packages.setdefault(package_of(module), set()).update(package_of(d) for d in deps)
    for package, deps in packages.items():
        deps.discard(package)
    assert find_cycle(packages) is None, f"packages importing each other: {' -> '.join(find_cycle(packages))}"


def test_the_boundary_check_catches_an_import_and_a_dynamic_import(tmp_path):
    pkg = tmp_path / "mmalign"
    (pkg / "synthetic").mkdir(parents=True)
    for name in ("__init__.py", "synthetic/__init__.py", "synthetic/world.py"):
        (pkg / name).write_text('"""A docstring may name mmalign.synthetic."""\n')
    (pkg / "registry.py").write_text('WORLD = "mmalign.synthetic.world"\n')
    (pkg / "pairs.py").write_text("def f():\n    from .synthetic.world import x\n")
    (pkg / "train.py").write_text('import importlib\nimportlib.import_module("mmalign.synthetic.world")\n')
    (pkg / "judges.py").write_text('"""Talks of mmalign.synthetic in its docstring only."""\n')
    assert boundary_offenders(tmp_path) == ({"mmalign.pairs": ["mmalign.synthetic.world"]}, ["mmalign.train"])


def test_the_cycle_finder_finds_a_circle_and_the_reader_sees_function_level_imports(tmp_path):
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    pkg = tmp_path / "mmalign"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "x.py").write_text("def f():\n    from .y import g\n    return g\n")
    (pkg / "y.py").write_text("from mmalign import x\n")
    graph = import_graph(tmp_path)
    assert graph["mmalign.x"] == {"mmalign.y"} and graph["mmalign.y"] == {"mmalign.x"}
    assert find_cycle(graph) is not None


# ---------------------------------------------------------------------------------------- the code hashes


def study_config(path: Path) -> dict:
    config = yaml.safe_load(path.read_text())
    expand_sweeps(config)
    apply_defaults(config)
    expand_base_replicates(config, expand_replicates(config))  # as common.smk does: the jobs are the seed runs
    return config


def dry_run_jobs(configfile: Path) -> list[tuple[str, dict]]:
    """(rule, wildcards) of every job of a study, from Snakemake's own plan."""
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--forceall", "--configfile", str(configfile)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    jobs = []
    for block in re.split(r"^(?=(?:local)?rule \w+:)", out.stdout + out.stderr, flags=re.M)[1:]:
        rule = re.match(r"(?:local)?rule (\w+):", block).group(1)
        found = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        wildcards = dict(kv.split("=", 1) for kv in found.group(1).split(", ")) if found else {}
        if rule != "all":
            jobs.append((rule, wildcards))
    return jobs


def job_hashes(root: Path, config: dict, jobs) -> dict[tuple, str]:
    code = CodeVersions(root)
    return {(rule, tuple(sorted(w.items()))): code.version(job_entries(rule, config, w)) for rule, w in jobs}


@pytest.fixture(scope="module")
def studies():
    return {
        name: (study_config(REPO / "config" / f"{name}.yaml"), dry_run_jobs(REPO / "config" / f"{name}.yaml"))
        for name in ("paper", "config")
    }


def edited_copy(tmp_path: Path, relative: str) -> Path:
    root = tmp_path / "scripts"
    shutil.copytree(LIBRARY / "mmalign", root / "mmalign", ignore=shutil.ignore_patterns("__pycache__"))
    path = root / "mmalign" / relative
    path.write_text(path.read_text() + "\n# an edit\n")
    return root


def changed_jobs(studies, study: str, tmp_path: Path, relative: str) -> set[tuple]:
    config, jobs = studies[study]
    before = job_hashes(LIBRARY, config, jobs)
    after = job_hashes(edited_copy(tmp_path, relative), config, jobs)
    assert before.keys() == after.keys()
    return {job for job in before if before[job] != after[job]}


@pytest.mark.parametrize(
    "relative",
    sorted(p.relative_to(LIBRARY / "mmalign").as_posix() for p in (LIBRARY / "mmalign" / "synthetic").rglob("*.py")),
)
def test_an_edit_to_the_synthetic_world_reruns_no_job_of_the_paper_study(studies, tmp_path, relative):
    assert changed_jobs(studies, "paper", tmp_path, relative) == set()


def rules_of(jobs) -> set[str]:
    return {rule for rule, _ in jobs}


def test_an_edit_to_the_worlds_language_reruns_the_default_studys_jobs_that_read_answers(studies, tmp_path):
    """language.py (the parser and templates) is run by the world's pair sets, items, exact judge and tiny
    model, never by plain training, BDHS, the report or the world's rendering."""
    changed = changed_jobs(studies, "config", tmp_path, "synthetic/language.py")
    assert rules_of(changed) == {
        "build_base_model",
        "build_pairs",
        "build_analog_pairs",
        "benchmark_items",
        "evaluate_variant",
        "train",
    }
    config = studies["config"][0]
    trained = {dict(w)["trained"] for rule, w in changed if rule == "train"}
    annotated = {n for n, v in config["variants"].items() if v["method"] in ("online_dpo", "mixed_dpo")}
    assert trained == annotated  # their annotator is the exact judge; offline DPO's code is untouched
    built = {dict(w)["pairset"] for rule, w in changed if rule == "build_pairs"}
    world_made = {
        n
        for n, s in config["pairsets"].items()
        if s["kind"] == "povid_analog" or (s["kind"] == "corrupted" and s["corrupter"]["kind"] == "prior")
    }
    assert built == world_made  # subsamples and BDHS sets are rebuilt only as their sources' downstream


def test_an_edit_to_the_general_wing_reruns_both_studies(studies, tmp_path):
    for study in ("paper", "config"):
        assert rules_of(changed_jobs(studies, study, tmp_path / study, "schema.py")) >= {"build_pairs", "train"}


def test_every_rule_passes_the_code_hash_of_its_own_jobs():
    for path in (REPO / "workflow" / "rules").glob("*.smk"):
        for block in re.split(r"^\s*rule ", path.read_text(), flags=re.M)[1:]:
            name = block.split(":")[0]
            if name != "all":
                assert f'code=code_of("{name}")' in block, f'rule {name} ({path.name}) lacks code=code_of("{name}")'
