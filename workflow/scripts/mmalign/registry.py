"""Where the study's machinery meets the synthetic world: the only place the general wing names
``mmalign.synthetic``.

The default study runs on a synthetic world (``mmalign.synthetic``: scenes, their language, a tiny LLaVA, analogs
of the preference data sets, an exact judge); the paper study never touches it. Every way the world plugs into
the machinery is an entry below, keyed by a config value, naming the module that implements it. A module is
imported only when a config uses its value, so

* a study that names none of them (config/paper.yaml) imports, runs and hashes nothing of the world;
* code hashes (``mmalign.codehash``) add a registered module's code only to the jobs whose config names it: an
  edit to the world reruns the default study's jobs that use it, never a job of the paper study.

``tests/test_architecture.py`` fails if any other module of the general wing imports (or names) the synthetic
package. The synthetic package may import the general wing freely.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

# config section `world:`: sample and render the scenes (rule build_world); ``write_world``, ``WorldSettings``
WORLD = "mmalign.synthetic.world"
# `base_model.build:`: build and SFT-train the tiny LLaVA (rule build_base_model); ``build_base_model``
BASE_MODEL_BUILD = "mmalign.synthetic.tinyllava"
# `pairsets.<name>.kind`: analogs of the preference data sets. povid_analog is built from the world by
# build_pairs (``build_pairset``); the other two with the base model by build_analog_pairs (``build_analog_pairset``)
PAIRSET_KINDS = {
    "povid_analog": "mmalign.synthetic.povid_analog",
    "vlfeedback_analog": "mmalign.synthetic.analogs",
    "rlhfv_analog": "mmalign.synthetic.analogs",
}
# `pairsets.<name>.corrupter.kind`: the world's prior-driven corrupter (``make_corrupter``)
CORRUPTER_KINDS = {"prior": "mmalign.synthetic.prior_corrupter"}
# `benchmarks.<name>.source`: items from the world's eval split (``build_items``), the prompt defaults that fit
# the world's language (``DEFAULTS[kind]``) and the world's answer parser where a scorer reads answers
# (``READERS[kind]``: TextVQA letters, GQA attributes, Object HalBench shapes)
BENCHMARK_SOURCES = {"synthetic": "mmalign.synthetic.benchmarks"}
# `judges.<name>.backend`: the exact judge that checks every claim against the scene (``make_judge``, ``SETTINGS``)
JUDGE_BACKENDS = {"exact": "mmalign.synthetic.exact_judge"}


def load(module: str) -> ModuleType:
    """Import a registered module (only ever called for a value a config names)."""
    return import_module(module)


def pairset_modules(spec: dict) -> list[str]:
    """The registered modules a pair set's build runs: its kind's, its corrupter's."""
    modules = [PAIRSET_KINDS[spec["kind"]]] if spec["kind"] in PAIRSET_KINDS else []
    corrupter = (spec.get("corrupter") or {}).get("kind") if spec["kind"] == "corrupted" else None
    return modules + ([CORRUPTER_KINDS[corrupter]] if corrupter in CORRUPTER_KINDS else [])


def benchmark_modules(spec: dict) -> list[str]:
    """The registered module of a benchmark's source (items, prompt defaults, answer readers), if any."""
    return [BENCHMARK_SOURCES[spec["source"]]] if spec["source"] in BENCHMARK_SOURCES else []


def judge_modules(spec: dict | None) -> list[str]:
    """The registered module of a judge's backend, if any (``spec``: a ``judges`` entry, or None)."""
    backend = (spec or {}).get("backend")
    return [JUDGE_BACKENDS[backend]] if backend in JUDGE_BACKENDS else []
