# Helpers only (no rules): config validation, wildcard constraints, input functions.

import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# OpenMP threads that wait for work sleep instead of spinning: with the default (active) policy a 2-thread torch
# job slows 6-10x as soon as another job wants a core (docs/performance.md). Jobs inherit this environment.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Local jobs that import torch & co. fork from a warm interpreter instead of importing them again (~6.8 s a job;
# mmalign/prefork.py says how, and why seeded results are unchanged). MMALIGN_PREFORK=0 turns it off.
os.environ.setdefault("MMALIGN_PREFORK", "1")

LIBRARY_ROOT = Path(workflow.basedir) / "workflow" / "scripts"
sys.path.insert(0, str(LIBRARY_ROOT))
from mmalign.codehash import CodeVersions, job_entries  # noqa: E402
from mmalign.config import (
    ConfigError,
    apply_defaults,
    check_references,
    check_yaml_file,
    BASE_REPLICATES,
    expand_base_replicates,
    expand_replicates,
    expand_sweeps,
    trigger_spec,
    validate_config,
)  # noqa: E402
from mmalign.compute import Compute  # noqa: E402
from mmalign.hub import repo_type_of  # noqa: E402
from mmalign.pairs.build import DERIVED_KINDS, RULES as PAIRSET_RULES  # noqa: E402
from mmalign.train import methods  # noqa: E402
from mmalign import registry  # noqa: E402

# The config is checked by mmalign.config (the JSON schema, with the method list filled in from the library, then
# the references between entries), before any job is planned, naming every offending key. The schema sets no
# defaults, so Snakemake's own validate() would add nothing to it: defaults live once, in the library.
SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
try:
    for path in workflow.configfiles:  # Snakemake's own YAML reading keeps the last of two equal keys
        check_yaml_file(path)
    expand_sweeps(config)  # sweeps add variants; then variant_defaults / pairset_defaults fill every entry
    apply_defaults(config)
    validate_config(config, SCHEMA)
    check_references(config)
    REPLICATES = expand_replicates(config)  # variant -> its seed runs <variant>/seed<k>, each its own target
    # replicates.base_model: run k of each replicated variant starts from base model k, and pair sets generated with
    # the base model are rebuilt with it (<pairset>/seed<k>); the base model's evaluations become base/seed<k>
    BASE_SEEDS = expand_base_replicates(config, REPLICATES)
except ConfigError as err:
    raise WorkflowError(str(err)) from None

MODEL = config["base_model"]["name"]
COMPUTE = Compute.from_dict(config.get("compute")).as_dict()  # every request filled in: jobs resolve it
VARIANTS = list(config["variants"])
# the base model's evaluations: base, or base/seed<k> with replicates.base_model
BASE_RUNS = REPLICATES.get(BASE_REPLICATES, [BASE_REPLICATES])
EVALUATED = BASE_RUNS + VARIANTS
BENCHMARKS = list(config["benchmarks"])
DOWNLOADS = config.get("downloads", {})
REPORT_COLUMNS = config["report"].get("columns", {})


def _alternatives(names):
    """A wildcard regex matching exactly these names (and nothing, if there are none)."""
    return "|".join(re.escape(n) for n in names) or "(?!x)x"


def pairsets_of(rule):
    """The pair sets built by one of the pair-set rules (mmalign.pairs.build.RULES maps a kind to its builder)."""
    return [
        n for n, spec in config["pairsets"].items() if PAIRSET_RULES.get(spec["kind"], "build_pairs") == rule
    ]


BDHS_PAIRSETS = pairsets_of("build_bdhs_pairs")


wildcard_constraints:
    variant=_alternatives(EVALUATED),
    trained=_alternatives(VARIANTS),
    benchmark=_alternatives(BENCHMARKS),


CODE = CodeVersions(LIBRARY_ROOT)


def code_of(rule):
    """The `code` param of a rule's jobs: a hash of the library code the job runs (mmalign.codehash), so that an
    edit to it reruns exactly the jobs that run it. Snakemake itself tracks only a script's own text."""

    def job_code(wildcards):
        return CODE.version(job_entries(rule, config, dict(wildcards.items())))

    return job_code


def final_outputs():
    outputs = ["results/tables/metrics.csv", "results/figures/pope.png"]
    if BDHS_PAIRSETS:
        outputs.append("results/figures/bdhs_iterations.png")
    outputs += report_outputs()
    return outputs


# ------------------------------------------------------------------ report: paper tables and claims

RESOURCES = Path(workflow.basedir) / "workflow" / "resources"
TABLES = list(config["report"].get("tables") or {})
REWARD_TABLE_NAME = (config["report"].get("reward_table") or {}).get("name", "table7")
# Fig. 9 marks the noise levels N of the BDHS_noise pair sets this study builds
NOISE_LEVELS = sorted(
    {spec.get("noise_steps", 0) for spec in config["pairsets"].values() if spec["kind"] == "bdhs"} - {0}
)


try:  # the claims must name columns this config defines: say so now, not after the whole study has run
    from mmalign.report.claims import ClaimError, load_claims

    load_claims(RESOURCES / "claims.yaml", REPORT_COLUMNS)
except ClaimError as err:
    raise WorkflowError(f"config key 'report.columns' does not fit the claims: {err}") from None


def report_outputs():
    """The paper's tables (markdown + CSV) and their charts, the claims scorecard, Fig. 7 and Fig. 9."""
    outputs = []
    for table in TABLES:
        outputs += [f"results/tables/{table}.md", f"results/figures/tables/{table}.png"]
    if config["report"].get("reward_table"):  # Table 7: reward-model accuracy on held-out splits
        outputs += [
            f"results/tables/{REWARD_TABLE_NAME}.md",
            f"results/figures/tables/{REWARD_TABLE_NAME}.png",
        ]
    outputs += ["results/tables/claims.md", "results/figures/beta_schedule.png"]
    if config["report"].get("size_series"):
        outputs.append("results/figures/size_series.png")
    return outputs


def published_numbers():
    """The paper's published numbers, an input of the tables only when they are shown beside ours."""
    return [str(RESOURCES / "paper_results.csv")] if config["report"].get("compare_with_paper") else []


def bdhs_stats():
    """Fig. 10 reads the BDHS sets of the config (made with base model 0), not their base-seed copies."""
    return [
        f"results/pairs/{name}/bdhs_iterations.jsonl"
        for name in BDHS_PAIRSETS
        if name not in BASE_SEEDS.pairsets
    ]


def settings_of(section):
    """Settings of one named config entry, as a plain dict, for params."""

    def lookup_settings(wildcards):
        name = getattr(wildcards, section.rstrip("s"))
        return dict(config[section][name])

    return lookup_settings


# ----------------------------------------------------------------------------------- base model


def base_model_dir(k=0):
    """The base model, or with replicates.base_model its replicate built with the study's seed + k."""
    return f"resources/models/{BASE_SEEDS.model(MODEL, k)}"


def built_models():
    return BASE_SEEDS.models(MODEL) if "build" in config["base_model"] else []


def base_build_seed(wildcards):
    """The seed of a built base model: the study's, plus k for its replicate k."""
    return config["seed"] + BASE_SEEDS.models(MODEL).index(wildcards.model)


def embedder_downloads():
    """The downloads entries named as BDHS embedders (pair sets' and online variants' `embedder`)."""
    named = [spec.get("embedder") for spec in config["pairsets"].values()]
    named += [(v.get("online") or {}).get("embedder") for v in config["variants"].values()]
    return sorted({n for n in named if n in DOWNLOADS})


def downloaded_models():
    name = config["base_model"].get("download")
    return ([MODEL] if name else []) + judge_downloads() + embedder_downloads()


def model_download_name(wildcards):
    """The downloads entry of a model directory: the base model's own entry, else the directory's name."""
    return config["base_model"]["download"] if wildcards.model == MODEL else wildcards.model


def model_download(wildcards):
    return dict(DOWNLOADS[model_download_name(wildcards)])


def embedder_input(name):
    """A BDHS embedder that names a downloads entry is read from its download directory (else: {})."""
    return {"embedder": f"resources/models/{name}"} if name in DOWNLOADS else {}


def dataset_download(wildcards):
    return dict(DOWNLOADS[wildcards.dataset])


def dataset_names():
    return [n for n, d in DOWNLOADS.items() if repo_type_of(d) == "dataset"]


# ---------------------------------------------------------------------------------------- pairs


WORLD_INPUTS = {"scenes": "results/world/scenes.jsonl", "images": "results/world/images"}


def uses_world(pairset=None, benchmark=None, judge=None):
    """Whether a config entry (a pair set, benchmark or judge spec) plugs in the synthetic world through
    mmalign.registry: its jobs then read the world's scenes (and images)."""
    return bool(
        (pairset and registry.pairset_modules(pairset))
        or (benchmark and registry.benchmark_modules(benchmark))
        or (judge and registry.judge_modules(judge))
    )


def pair_inputs(wildcards):
    """What a pair set is built from: the world (synthetic analogs) or downloaded snapshots."""
    spec = config["pairsets"][wildcards.pairset]
    if spec["kind"] in DERIVED_KINDS:  # first: a corrupted set with the world's prior corrupter reads both
        return derived_pair_inputs(spec)
    if uses_world(pairset=spec):
        return dict(WORLD_INPUTS)
    if spec["kind"] == "rlhfv":  # images come inside the parquet
        return {"snapshot": f"resources/datasets/{spec['download']}"}
    return {
        "snapshot": f"resources/datasets/{spec['download']}",
        "images": f"resources/datasets/{spec['images']}",
    }


def derived_pair_inputs(spec):
    """A subsample or corrupted variant reads its source pair set (and the world, for the prior corrupter)."""
    inputs = {"source": f"results/pairs/{spec['source']}/pairs.parquet"}
    if spec.get("prompts_from"):
        inputs["prompts"] = f"results/pairs/{spec['prompts_from']}/pairs.parquet"
    if spec["kind"] == "corrupted" and uses_world(pairset=spec):  # the prior corrupter reads the world
        inputs["scenes"] = WORLD_INPUTS["scenes"]
    return inputs


def bdhs_inputs(wildcards):
    """An offline BDHS set reads its source pairs, the base model and (if a downloads entry) the embedder."""
    spec = config["pairsets"][wildcards.pairset]
    return {
        "source": f"results/pairs/{spec['source']}/pairs.parquet",
        "model": pairset_base_model(wildcards),
        **embedder_input(spec.get("embedder")),
    }


def pairset_base_model(wildcards):
    """The base model that generates a pair set's answers (BDHS, the VLFeedback / RLHF-V analogs)."""
    return base_model_dir(BASE_SEEDS.of_pairset(wildcards.pairset))


# ------------------------------------------------------------------------------------ training


def variant_spec(wildcards):
    """Everything that defines a run; written to spec.json (resolved through the library's settings), whose
    content change reruns training."""
    spec = dict(config["variants"][wildcards.trained])
    spec.setdefault("seed", config["seed"])
    spec["variant"] = wildcards.trained
    spec["base_model"] = BASE_SEEDS.model(MODEL, BASE_SEEDS.of_run(wildcards.trained))
    spec["compute"] = COMPUTE  # precision decides the numbers: a change retrains
    online = spec.get("online") or {}
    if online.get("embedder") in DOWNLOADS:  # the embedder's download directory (an input of the train job)
        spec["online"] = {**online, "embedder": embedder_input(online["embedder"])["embedder"]}
    return trigger_spec(spec)  # an RL run's own settings only: a DPO default's edit does not retrain it


def variant_pairs(wildcards):
    return f"results/pairs/{config['variants'][wildcards.trained]['pairset']}/pairs.parquet"


def annotator_spec(wildcards):
    """The judge that ranks a variant's samples ({} when its method needs none)."""
    variant = config["variants"][wildcards.trained]
    return dict(config["judges"][variant["annotator"]]) if methods.get(variant["method"]).annotator else {}


def reference_set(variant):
    """The name of a run's reference log-probs: its pair set's name, or '<pairset>/seed<k>' when the run starts
    from base model k but its pair set does not depend on the base model (same pairs, another reference)."""
    pairset = config["variants"][variant]["pairset"]
    k = BASE_SEEDS.of_run(variant)
    return pairset if BASE_SEEDS.of_pairset(pairset) == k else f"{pairset}/seed{k}"


def reads_precomputed_reference(variant):
    """Whether a variant's reference log-probs are computed before training (its method trains on fixed pairs)."""
    spec = config["variants"][variant]
    return (
        spec.get("reference_logps", "precomputed") == "precomputed"
        and methods.get(spec["method"]).precomputed_reference
    )


def reference_pairsets():
    """Pair sets whose reference log-probs are a rule's artifact: those several variants read. A set one variant
    reads is scored in that variant's own training process (no second process start for one reader)."""
    readers, scores = {}, {}
    for variant in config["variants"]:
        if reads_precomputed_reference(variant):
            name = reference_set(variant)
            readers[name] = readers.get(name, 0) + 1
            scores[name] = (config["variants"][variant]["pairset"], BASE_SEEDS.of_run(variant))
    return {name: scores[name] for name in sorted(readers) if readers[name] > 1}


REFERENCE_PAIRSETS = reference_pairsets()  # reference set -> (its pair set, its base model's seed)


def reference_inputs(wildcards):
    """The pairs a reference set scores and the base model that scores them."""
    pairset, k = REFERENCE_PAIRSETS[wildcards.pairset]
    return {"pairs": f"results/pairs/{pairset}/pairs.parquet", "model": base_model_dir(k)}


def train_inputs(wildcards):
    """A run's spec, the base model and its pair set (and the set's reference log-probs); an online run whose
    annotator checks samples against the world's ground truth also reads the world's scenes."""
    inputs = {
        "spec": f"results/runs/{wildcards.trained}/spec.json",
        "model": base_model_dir(BASE_SEEDS.of_run(wildcards.trained)),
        "pairs": variant_pairs(wildcards),
    }
    reference = reference_set(wildcards.trained)
    if reads_precomputed_reference(wildcards.trained) and reference in REFERENCE_PAIRSETS:
        inputs["reference_logps"] = f"results/reference_logps/{reference}/logps.parquet"
    if uses_world(judge=annotator_spec(wildcards)):
        inputs["scenes"] = WORLD_INPUTS["scenes"]
    reward_model = config["variants"][wildcards.trained].get("reward_model")
    if methods.get(
        config["variants"][wildcards.trained]["method"]
    ).reward_model:  # RL: samples scored by an RM
        inputs["reward_model"] = reward_model_adapter(reward_model)
    inputs.update(embedder_input((config["variants"][wildcards.trained].get("online") or {}).get("embedder")))
    return inputs


# ---------------------------------------------------------------------------------- evaluation


def benchmark_inputs(wildcards):
    spec = config["benchmarks"][wildcards.benchmark]
    if uses_world(benchmark=spec):
        return dict(WORLD_INPUTS)
    inputs = {"snapshot": f"resources/datasets/{spec['download']}"}
    if spec.get("annotations"):  # Object HalBench: COCO annotations for the ground truth
        inputs["annotations"] = f"resources/datasets/{spec['annotations']}"
    return inputs


# evaluation.jobs: one `evaluate` job per (variant, benchmark), or one `evaluate_variant` job per variant that
# loads the policy once for every benchmark (same outputs; the default study's benchmarks take seconds, less
# than starting Python and loading the model).
EVAL_PER_VARIANT = config.get("evaluation", {}).get("jobs", "per_benchmark") == "per_variant"


def judge_model_dir(benchmark):
    """The local judge model a benchmark's judge loads, or None (rule-scored, exact or endpoint judges)."""
    download = judge_of(benchmark).get("download")
    return f"resources/models/{download}" if download else None


def model_inputs(variant):
    """The base model, plus the variant's adapter unless the variant is the base model itself."""
    inputs = {"model": base_model_dir(BASE_SEEDS.of_run(variant))}
    if variant not in BASE_RUNS:
        inputs["adapter"] = f"results/runs/{variant}/adapter"
    return inputs


def policy_inputs(wildcards):
    """model_inputs, the benchmark's items, and the judge's model when a local judge is downloaded."""
    inputs = {
        **model_inputs(wildcards.variant),
        "items_jsonl": f"results/benchmarks/{wildcards.benchmark}/items.jsonl",
    }
    judge_model = judge_model_dir(wildcards.benchmark)
    if judge_model:
        inputs["judge_model"] = judge_model
    return inputs


def suite_inputs(wildcards):
    """policy_inputs for every benchmark at once (evaluate_variant): items in BENCHMARKS order."""
    inputs = {
        **model_inputs(wildcards.variant),
        "benchmark_items": [f"results/benchmarks/{b}/items.jsonl" for b in BENCHMARKS],
    }
    judge_models = sorted({judge_model_dir(b) for b in BENCHMARKS} - {None})
    if judge_models:
        inputs["judge_models"] = judge_models
    return inputs


def suite_runs():
    """Per benchmark (BENCHMARKS order): its settings, its judge's settings and local model (evaluate_variant)."""
    return {
        b: {
            "spec": dict(config["benchmarks"][b]),
            "judge_spec": judge_of(b) or None,
            "judge_model_dir": judge_model_dir(b),
        }
        for b in BENCHMARKS
    }


JUDGMENT_CACHE = (
    "results/judgments/cache.sqlite"  # raw judgments on (judge id, prompt hash), shared by all jobs
)


def judge_of(benchmark):
    """The settings of the judge that scores a benchmark ({} for benchmarks scored by rule)."""
    name = config["benchmarks"][benchmark].get("judge")
    return dict(config.get("judges", {})[name]) if name else {}


def benchmark_judge(wildcards):
    return judge_of(wildcards.benchmark)


def judge_downloads():
    return [j["download"] for j in config.get("judges", {}).values() if j.get("download")]


def all_eval_metrics():
    return expand("results/eval/{variant}/{benchmark}/metrics.json", variant=EVALUATED, benchmark=BENCHMARKS)


def all_eval_judgments():
    """The per-item verdicts the intervals resample (mmalign.report.item_scores)."""
    return expand(
        "results/eval/{variant}/{benchmark}/judgments.jsonl", variant=EVALUATED, benchmark=BENCHMARKS
    )


def all_benchmark_items():
    return expand("results/benchmarks/{benchmark}/items.jsonl", benchmark=BENCHMARKS)


UNCERTAINTY = dict(config["report"].get("uncertainty") or {})


# ------------------------------------------------------------------------ reward models (Table 7)

REWARD_MODELS = list(config.get("reward_models") or {})
REWARD_TABLE = config["report"].get("reward_table") or {}
# Held-out splits are per pair set, shared by every reward model that reads the set: each RM trains on the train
# split of its sets, and Table 7 scores every RM on the held-out split of each column's set (disjoint by image).
REWARD_PAIRSETS = sorted(
    {p for spec in (config.get("reward_models") or {}).values() for p in spec["pairsets"]}
    | set((REWARD_TABLE.get("columns") or {}).values())
)
REWARD_SPLITS = dict(config.get("reward_splits") or {})


def reward_model_settings(wildcards):
    return dict(config["reward_models"][wildcards.rm])


def reward_train_splits(wildcards):
    return [
        f"results/reward/splits/{p}/train.parquet" for p in config["reward_models"][wildcards.rm]["pairsets"]
    ]


def reward_model_adapter(rm):
    return f"results/reward_models/{rm}/adapter"


REWARD_HELDOUT = list(dict.fromkeys((REWARD_TABLE.get("columns") or {}).values()))  # Table 7's columns


def reward_heldout_splits():
    return [f"results/reward/splits/{p}/heldout.parquet" for p in REWARD_HELDOUT]


def reward_heldout_outputs(suffix):
    """A reward model's held-out results, one file per Table 7 column ({rm} left as the rule's wildcard)."""
    return [f"results/reward_models/{{rm}}/heldout/{p}.{suffix}" for p in REWARD_HELDOUT]


def reward_accuracies():
    """Every (reward model, held-out set) of Table 7."""
    rows = list((REWARD_TABLE.get("rows") or {}).values())
    return expand("results/reward_models/{rm}/heldout/{pairset}.json", rm=rows, pairset=REWARD_HELDOUT)


def reward_variant_runs():
    """The RL variants (method rloo / ppo) a table or claim may mark 'policy training not stable': their
    train_metrics.json holds the stability verdict (every replicate seed's run)."""
    runs = []
    for variant, spec in config["variants"].items():
        if methods.get(spec["method"]).reward_model:
            runs.append(f"results/runs/{variant}/train_metrics.json")
    return runs
