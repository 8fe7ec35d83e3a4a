"""Code versions for the workflow's rules: a hash of the library code a job runs.

Snakemake reruns a job when its script changes, but not when a module the script imports does. So every rule
passes ``code=`` a hash of the library modules its job runs, as a param (a rerun trigger). The hash covers:

* the entry modules the rule names, and every ``mmalign`` module they import, followed through the import
  statements (at module level and inside functions, read with ``ast``), with the ``__init__`` of every package
  on the way (Python runs those too);
* the modules imported *by name* that the job's config selects: the registrations of ``mmalign.registry`` (the
  synthetic world) and the method modules of ``mmalign.train.methods``. Import statements never name them, so
  they enter only the hashes of the jobs that use them.

An edit therefore reruns exactly the jobs whose code contains the edited file, and an edit to the synthetic
package never reruns a job of a study that does not name it (``tests/test_architecture.py``).
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

from mmalign import registry
from mmalign.train import methods

PACKAGE = "mmalign"


class CodeVersions:
    """Import closures and hashes over one copy of the library (``root``: the folder holding ``mmalign/``)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.imports = cache(self._imports)
        self._versions: dict[tuple[str, ...], str] = {}

    def path(self, module: str) -> Path | None:
        """The file of a module of the package (a package's ``__init__.py``), None if there is none."""
        base = self.root.joinpath(*module.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
        return None

    def _imports(self, module: str) -> frozenset[str]:
        """The package's modules that one module's import statements name (absolute or relative)."""
        path = self.path(module)
        if path is None:
            raise ValueError(f"{module}: no such module under {self.root}")
        is_package = path.name == "__init__.py"
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = self._resolve(module, is_package, node.module, node.level)
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names if self.path(f"{base}.{alias.name}"))
        return frozenset(m for m in found if m.split(".")[0] == PACKAGE and self.path(m))

    @staticmethod
    def _resolve(module: str, is_package: bool, name: str | None, level: int) -> str:
        if not level:
            return name or ""
        parts = module.split(".")
        anchor = parts if is_package else parts[:-1]  # a relative import is relative to the module's package
        anchor = anchor[: len(anchor) - (level - 1)]
        return ".".join(anchor + ([name] if name else []))

    def closure(self, entries) -> list[str]:
        """Every module the entries run: their imports, followed, and the packages they sit in."""
        seen: set[str] = set()
        todo = list(entries)
        while todo:
            module = todo.pop()
            if module in seen:
                continue
            if self.path(module) is None:
                raise ValueError(f"code version: {module!r} is not a module of {PACKAGE}")
            seen.add(module)
            parts = module.split(".")
            todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # the packages' __init__ files
            todo += self.imports(module)
        return sorted(seen)

    def files(self, entries) -> list[Path]:
        return sorted({self.path(m) for m in self.closure(entries)})

    def version(self, entries) -> str:
        """A short hash of the files the entries run (their paths relative to the library and their bytes)."""
        key = tuple(sorted(set(entries)))
        if key not in self._versions:
            digest = hashlib.sha256()
            for path in self.files(key):
                digest.update(path.relative_to(self.root).as_posix().encode() + b"\0" + path.read_bytes())
            self._versions[key] = digest.hexdigest()[:16]
        return self._versions[key]


# ------------------------------------------------------------------ what each rule's job runs

FIXED_ENTRIES = {  # rule -> its entry modules, whatever the job
    "download_model": ["mmalign.hub"],
    "download_dataset": ["mmalign.hub"],
    "verify_pins": ["mmalign.pins"],
    "build_bdhs_pairs": ["mmalign.pairs.bdhs", "mmalign.gpus"],
    "variant_spec": ["mmalign.train.settings"],
    "reference_logps": ["mmalign.train.reference", "mmalign.gpus"],
    "aggregate_metrics": ["mmalign.report.metrics"],
    "figure_pope": ["mmalign.report.figures"],
    "figure_bdhs_iterations": ["mmalign.report.figures"],
    "paper_table": ["mmalign.report.tables", "mmalign.report.figures", "mmalign.report.stability"],
    "claims_scorecard": ["mmalign.report.claims"],
    "figure_size_series": ["mmalign.report.figures"],
    "beta_schedule": ["mmalign.bdhs"],
    "figure_beta_schedule": ["mmalign.report.figures"],
    "reward_split": ["mmalign.reward.splits"],
    "train_reward_model": ["mmalign.reward.study", "mmalign.reward.train", "mmalign.gpus", "mmalign.provenance"],
    "eval_reward_model": ["mmalign.reward.study", "mmalign.reward.accuracy", "mmalign.reward.model"],
    "reward_table": ["mmalign.report.reward_table"],
    "build_world": [registry.WORLD],
    "build_base_model": [registry.BASE_MODEL_BUILD],
}


def job_entries(rule: str, config: dict, wildcards: dict) -> list[str]:
    """The entry modules of one job of ``rule``: the rule's own, and those its config values register."""
    if rule in FIXED_ENTRIES:
        return FIXED_ENTRIES[rule]
    if rule in ("build_pairs", "build_pairs_with_images"):
        return ["mmalign.pairs.build", *registry.pairset_modules(config["pairsets"][wildcards["pairset"]])]
    if rule == "build_analog_pairs":
        return registry.pairset_modules(config["pairsets"][wildcards["pairset"]])
    if rule == "train":
        variant = config["variants"][wildcards["trained"]]
        annotator = config.get("judges", {}).get(variant.get("annotator"))
        return ["mmalign.train.launch", *methods.modules(variant["method"]), *registry.judge_modules(annotator)]
    if rule == "benchmark_items":
        return ["mmalign.evaluate.items", *registry.benchmark_modules(config["benchmarks"][wildcards["benchmark"]])]
    if rule in ("evaluate", "evaluate_variant"):
        names = [wildcards["benchmark"]] if rule == "evaluate" else list(config["benchmarks"])
        entries = ["mmalign.evaluate.run", "mmalign.gpus"]
        for name in names:
            spec = config["benchmarks"][name]
            judge = config.get("judges", {}).get(spec.get("judge"))
            entries += [*registry.benchmark_modules(spec), *registry.judge_modules(judge)]
        return entries
    raise ValueError(f"code version: rule {rule!r} has no entry in mmalign.codehash")
