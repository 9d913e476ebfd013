# Mode connectivity: a classifier fine-tuned from each model with two seeds, barriers along the
# straight path between the seeds at every checkpoint, trained Bezier curves, tables, figures.


rule pretrain_budget:
    input:
        corpus="results/prepare/corpus.parquet",
        tokenizer=TOKENIZER,
    output:
        model=directory("results/connectivity/pretrained/steps{steps}"),
        metrics="results/connectivity/pretrained/steps{steps}.json",
    log:
        "logs/pretrain_budget/steps{steps}.log",
    benchmark:
        "benchmarks/pretrain_budget/steps{steps}.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    threads: 1
    resources:
        gpu=GPUS,
        mem_mb=4000,
        runtime=60,
    params:
        arch=canonical(config["model"]),
        hp=budget_hyperparameters,
        seed=config["pretrain"]["seeds"]["theta0"],
        device=config["device"],
        dtype=config["dtype"],
    script:
        "../../scripts/pretrain_budget.py"


rule finetune_classifier:
    input:
        unpack(classifier_inputs),
    output:
        checkpoints=directory(
            "results/connectivity/finetune/{size}/{method}/checkpoints"
        ),
        loss="results/connectivity/finetune/{size}/{method}/loss.parquet",
    log:
        "logs/finetune_classifier/{size}/{method}.log",
    benchmark:
        "benchmarks/finetune_classifier/{size}/{method}.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    threads: 1
    resources:
        gpu=GPUS,
        mem_mb=8000,
        runtime=120,
    params:
        source=classifier_source,
        hp=canonical(LMC["finetune"]),
        lora=canonical(LMC["lora"]),
        data=task_settings(),
        seeds=LMC["seeds"],
        device=config["device"],
        dtype=config["dtype"],
    script:
        "../../scripts/finetune_classifier.py"


rule connect:
    input:
        checkpoints="results/connectivity/finetune/{size}/{method}/checkpoints",
        movie="results/prepare/movie.parquet",
    output:
        curves="results/connectivity/lmc/{size}/{method}/curves.parquet",
        barriers="results/connectivity/lmc/{size}/{method}/barriers.parquet",
    log:
        "logs/connect/{size}/{method}.log",
    benchmark:
        "benchmarks/connect/{size}/{method}.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    threads: 1
    resources:
        gpu=GPUS,
        mem_mb=8000,
        runtime=60,
    params:
        data=lmc_settings(),
        seeds=LMC["seeds"],
        max_length=LMC["finetune"]["max_length"],
    script:
        "../../scripts/connect.py"


rule bezier:
    input:
        unpack(curve_endpoints),
        movie="results/prepare/movie.parquet",
    output:
        curves="results/connectivity/bezier/{pair}/curves.parquet",
        history="results/connectivity/bezier/{pair}/history.parquet",
        phi=directory("results/connectivity/bezier/{pair}/phi"),
    log:
        "logs/bezier/{pair}.log",
    benchmark:
        "benchmarks/bezier/{pair}.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    threads: 1
    resources:
        gpu=GPUS,
        mem_mb=8000,
        runtime=120,
    params:
        endpoints=curve_endpoint_paths,
        curves=canonical(LMC["curves"]),
        data=lmc_settings(),
        max_length=LMC["finetune"]["max_length"],
    script:
        "../../scripts/bezier.py"


rule tabulate_connectivity:
    input:
        barriers=lmc_barrier_tables(),
    output:
        barriers="results/tables/connectivity_barriers.parquet",
        loss=report(
            "results/tables/connectivity_loss.tsv",
            caption="../report/connectivity_table.rst",
            category="Mode connectivity",
        ),
        error=report(
            "results/tables/connectivity_error.tsv",
            caption="../report/connectivity_table.rst",
            category="Mode connectivity",
        ),
    log:
        "logs/tabulate_connectivity/tables.log",
    benchmark:
        "benchmarks/tabulate_connectivity/tables.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    params:
        models=lmc_model_labels(),
    script:
        "../../scripts/tabulate_connectivity.py"


rule plot_connectivity:
    input:
        barriers="results/tables/connectivity_barriers.parquet",
        curves=lmc_curve_tables(),
    output:
        steps=report(
            CONNECTIVITY_FIGURES[0],
            caption="../report/connectivity_steps.rst",
            category="Mode connectivity",
        ),
        curves=report(
            CONNECTIVITY_FIGURES[1],
            caption="../report/connectivity_curves.rst",
            category="Mode connectivity",
        ),
    log:
        "logs/plot_connectivity/figures.log",
    benchmark:
        "benchmarks/plot_connectivity/figures.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    params:
        pairs=CURVE_PAIRS,
    script:
        "../../scripts/plot_connectivity.py"
