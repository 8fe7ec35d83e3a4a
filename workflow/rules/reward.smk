# Stage 3b: reward models (the paper's section 2.4 and Table 7). The RL variants that use them (methods rloo and
# ppo) train through rule `train`, which reads their reward model's adapter.


rule reward_split:
    """A pair set split for reward modelling: a seeded held-out share, disjoint from the rest by image, so that no
    reward model is scored on an image it trained on (mmalign.reward.data.split_by_image)."""
    input:
        pairs="results/pairs/{pairset}/pairs.parquet",
    output:
        train="results/reward/splits/{pairset}/train.parquet",
        heldout="results/reward/splits/{pairset}/heldout.parquet",
        manifest="results/reward/splits/{pairset}/split.json",
    log:
        "logs/reward_split/{pairset}.log",
    wildcard_constraints:
        pairset=_alternatives(REWARD_PAIRSETS),
    localrule: True
    conda:
        "../../envs/pairs.yaml"
    threads: 1
    params:
        split=REWARD_SPLITS,
        seed=config["seed"],
        code=code_of("reward_split"),
    script:
        "../scripts/reward_split.py"


rule train_reward_model:
    """A reward model: the base model with a scalar head on its last token, LoRA on the language model, trained
    with TRL's RewardTrainer (a vision collator) on the Bradley-Terry loss (Eq. 1) over the train splits of its
    pair sets. Fails, publishing nothing, when its accuracy on its own training split is at chance."""
    input:
        model=base_model_dir(),
        train=reward_train_splits,
    output:
        adapter=directory("results/reward_models/{rm}/adapter"),
        metrics="results/reward_models/{rm}/train_metrics.json",
        log_jsonl="results/reward_models/{rm}/train_log.jsonl",
    log:
        "logs/train_reward_model/{rm}.log",
    benchmark:
        "results/timing/train_reward_model/{rm}.tsv"
    wildcard_constraints:
        rm=_alternatives(REWARD_MODELS),
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        settings=reward_model_settings,
        code=code_of("train_reward_model"),
        compute=COMPUTE,
    script:
        "../scripts/train_reward_model.py"


rule eval_reward_model:
    """One row of Table 7: a reward model's accuracy on the held-out split of every pair set of the table's
    columns (the share of pairs whose chosen answer it scores strictly above the rejected one), with every pair's
    scores; one job per model, which loads it once."""
    input:
        model=base_model_dir(),
        adapter="results/reward_models/{rm}/adapter",
        metrics="results/reward_models/{rm}/train_metrics.json",
        heldout=reward_heldout_splits(),
    output:
        accuracy=reward_heldout_outputs("json"),
        scores=reward_heldout_outputs("jsonl"),
    log:
        "logs/eval_reward_model/{rm}.log",
    benchmark:
        "results/timing/eval_reward_model/{rm}.tsv"
    wildcard_constraints:
        rm=_alternatives(REWARD_MODELS),
    conda:
        "../../envs/eval.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        code=code_of("eval_reward_model"),
        compute=COMPUTE,
    script:
        "../scripts/eval_reward_model.py"


rule reward_table:
    """Table 7: every reward model's accuracy on every held-out split, with its item-bootstrap interval (and the
    paper's numbers beside, with report.compare_with_paper), as CSV, markdown and a heatmap."""
    input:
        accuracies=reward_accuracies(),
        published=published_numbers(),
    output:
        csv=report(
            f"results/tables/{REWARD_TABLE_NAME}.csv",
            caption="../report/reward_table.rst",
            category="Tables",
            subcategory=REWARD_TABLE.get("title", "Table 7"),
            labels={"type": "numbers"},
        ),
        md=f"results/tables/{REWARD_TABLE_NAME}.md",
        png=report(
            f"results/figures/tables/{REWARD_TABLE_NAME}.png",
            caption="../report/reward_table.rst",
            category="Tables",
            subcategory=REWARD_TABLE.get("title", "Table 7"),
            labels={"type": "chart"},
        ),
        svg=f"results/figures/tables/{REWARD_TABLE_NAME}.svg",
    log:
        "logs/reward_table.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        table=REWARD_TABLE,
        uncertainty=UNCERTAINTY,
        code=code_of("reward_table"),
    script:
        "../scripts/reward_table.py"
