"""Understanding Alignment in Multimodal LLMs (Amirloo et al., 2024), rerun as one DAG.

Folder scheme:
  results/world/                       the synthetic world (default study)
  resources/models/<model>/            base model (built, or downloaded from the Hub)
  resources/datasets/<name>/           downloaded Hub snapshots (paper study)
  results/pairs/<pairset>/             preference pairs (pairs.parquet) + manifest.json
  results/runs/<variant>/              spec.json, adapter/, train_log.jsonl, train_metrics.json
  results/reward/splits/<pairset>/     reward-model train / held-out splits (disjoint by image)
  results/reward_models/<rm>/          adapter/, train_metrics.json, heldout/<pairset>.json (Table 7)
  results/benchmarks/<benchmark>/      benchmark items (one schema for real and synthetic)
  results/eval/<variant>/<benchmark>/  predictions.jsonl, judgments.jsonl, metrics.json
  results/tables/metrics.csv           every number; all tables and figures come from it
  results/figures/                     figures
"""

from snakemake.utils import min_version

min_version("9.12")


# A --configfile on the command line replaces the default study's config instead of being merged into it.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/pairs.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/reward.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    """The whole study: every variant on every benchmark, the metrics table and the figures."""
    default_target: True
    input:
        final_outputs(),
