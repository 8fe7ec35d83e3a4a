# Stage 5: one tidy metrics table, and figures made only from it.


rule aggregate_metrics:
    """Collect every metrics.json into results/tables/metrics.csv (one row per variant x benchmark x metric)."""
    input:
        all_eval_metrics(),
    output:
        report(
            "results/tables/metrics.csv",
            caption="../report/metrics.rst",
            category="Tables",
        ),
    params:
        code=code_version("report.py"),
    log:
        "logs/aggregate_metrics.log",
    conda:
        "../../envs/report.yaml"
    localrule: True
    threads: 1
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
    params:
        code=code_version("report.py"),
        figure=config["report"]["pope_figure"],
    log:
        "logs/figure_pope.log",
    conda:
        "../../envs/report.yaml"
    localrule: True
    threads: 1
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
    params:
        labels=BDHS_PAIRSETS,
        code=code_version("report.py"),
    log:
        "logs/figure_bdhs_iterations.log",
    conda:
        "../../envs/report.yaml"
    localrule: True
    threads: 1
    script:
        "../scripts/figure_bdhs_iterations.py"
