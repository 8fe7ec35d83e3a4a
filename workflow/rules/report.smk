# Stage 5: one tidy metrics table, and figures made only from it.


rule aggregate_metrics:
    """Collect every metrics.json into results/tables/metrics.csv (one row per variant x benchmark x metric), each
    number with its item-bootstrap interval (and, for replicated variants, the mean over seeds)."""
    input:
        metrics=all_eval_metrics(),
        judgments=all_eval_judgments(),
        benchmark_items=all_benchmark_items(),
    output:
        report(
            "results/tables/metrics.csv",
            caption="../report/metrics.rst",
            category="Tables",
        ),
    log:
        "logs/aggregate_metrics.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    # one worker process per thread (the table is the same for any number); Snakemake lowers it to the cores given
    threads: 8
    params:
        code=code_of("aggregate_metrics"),
        uncertainty=UNCERTAINTY,
        replicates=REPLICATES,
    script:
        "../scripts/aggregate_metrics.py"


rule figure_pope:
    """Bar chart of the base model vs every variant on each POPE split."""
    input:
        "results/tables/metrics.csv",
    output:
        png=report(
            "results/figures/pope.png",
            caption="../report/pope.rst",
            category="Figures",
            labels={"figure": "POPE by split"},
        ),
        svg="results/figures/pope.svg",
    log:
        "logs/figure_pope.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        code=code_of("figure_pope"),
        figure=config["report"]["pope_figure"],
    script:
        "../scripts/figure_pope.py"


rule figure_bdhs_iterations:
    """Fig. 10 analog: % of BDHS answers dissimilar from the reference after each iteration, per BDHS pair set."""
    input:
        bdhs_stats(),
    output:
        png=report(
            "results/figures/bdhs_iterations.png",
            caption="../report/bdhs_iterations.rst",
            category="Figures",
            labels={"figure": "BDHS iterations (Fig. 10)"},
        ),
        svg="results/figures/bdhs_iterations.svg",
    log:
        "logs/figure_bdhs_iterations.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        labels=BDHS_PAIRSETS,
        code=code_of("figure_bdhs_iterations"),
    script:
        "../scripts/figure_bdhs_iterations.py"


# ------------------------------------------------------- the paper's tables, charts, Fig. 7, Fig. 9, claims


rule paper_table:
    """One of the paper's tables (config report.tables) from metrics.csv, in the paper's layout (CSV + markdown)
    and as a chart (base model as the reference line); with report.compare_with_paper, the published numbers
    and the difference beside ours."""
    input:
        metrics="results/tables/metrics.csv",
        published=published_numbers(),
        stability=reward_variant_runs(),
    output:
        csv=report(
            "results/tables/{table}.csv",
            caption="../report/table.rst",
            category="Tables",
            subcategory=lambda w: config["report"]["tables"][w.table]["title"],
            labels={"type": "numbers"},
        ),
        md="results/tables/{table}.md",
        png=report(
            "results/figures/tables/{table}.png",
            caption="../report/table_chart.rst",
            category="Tables",
            subcategory=lambda w: config["report"]["tables"][w.table]["title"],
            labels={"type": "chart"},
        ),
        svg="results/figures/tables/{table}.svg",
    log:
        "logs/paper_table/{table}.log",
    wildcard_constraints:
        table=_alternatives(TABLES),
    localrule: True
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        table=lambda w: dict(config["report"]["tables"][w.table]),
        columns=REPORT_COLUMNS,
        replicates=REPLICATES,
        code=code_of("paper_table"),
    script:
        "../scripts/paper_table.py"


rule claims_scorecard:
    """Each headline claim of the paper (workflow/resources/claims.yaml) checked on metrics.csv, and on the
    paper's own published numbers: holds / does not hold / inconclusive / not measured, ours on the paired
    interval of each comparison (item verdicts resampled), with the numbers used."""
    input:
        metrics="results/tables/metrics.csv",
        eval_metrics=all_eval_metrics(),
        judgments=all_eval_judgments(),
        benchmark_items=all_benchmark_items(),
        claims=str(RESOURCES / "claims.yaml"),
        published=str(RESOURCES / "paper_results.csv"),
        reward_accuracies=reward_accuracies(),
        stability=reward_variant_runs(),
    output:
        csv=report(
            "results/tables/claims.csv",
            caption="../report/claims.rst",
            category="Claims",
            labels={"table": "claims scorecard", "type": "numbers"},
        ),
        md="results/tables/claims.md",
        comparisons="results/tables/claims_comparisons.csv",
    log:
        "logs/claims_scorecard.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        columns=REPORT_COLUMNS,
        study=config["study"],
        code=code_of("claims_scorecard"),
        uncertainty=UNCERTAINTY,
        replicates=REPLICATES,
    script:
        "../scripts/claims_scorecard.py"


rule figure_size_series:
    """Fig. 7: metrics of DPO against the number of preference pairs (variants dpo_<dataset>_n<size>)."""
    input:
        "results/tables/metrics.csv",
    output:
        png=report(
            "results/figures/size_series.png",
            caption="../report/size_series.rst",
            category="Figures",
            labels={"figure": "Fig. 7: preference-set size"},
        ),
        svg="results/figures/size_series.svg",
        csv="results/tables/size_series.csv",
    log:
        "logs/figure_size_series.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        series=config["report"].get("size_series"),
        code=code_of("figure_size_series"),
    script:
        "../scripts/figure_size_series.py"


rule beta_schedule:
    """The diffusion noise schedule BDHS_noise uses (mmalign.bdhs.beta_schedule), as a table for Fig. 9."""
    output:
        "results/tables/beta_schedule.csv",
    log:
        "logs/beta_schedule.log",
    localrule: True
    conda:
        "../../envs/train.yaml"
    threads: 1
    params:
        code=code_of("beta_schedule"),
    script:
        "../scripts/beta_schedule.py"


rule figure_beta_schedule:
    """Fig. 9: beta_k against the diffusion step and the image signal kept after N steps."""
    input:
        "results/tables/beta_schedule.csv",
    output:
        png=report(
            "results/figures/beta_schedule.png",
            caption="../report/beta_schedule.rst",
            category="Figures",
            labels={"figure": "Fig. 9: beta schedule"},
        ),
        svg="results/figures/beta_schedule.svg",
    log:
        "logs/figure_beta_schedule.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        noise_levels=NOISE_LEVELS,
        code=code_of("figure_beta_schedule"),
    script:
        "../scripts/figure_beta_schedule.py"
