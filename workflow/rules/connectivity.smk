# Mode connectivity: a classifier fine-tuned from each model with several seeds, barriers along
# the straight path between the seeds at every checkpoint, trained Bezier curves, tables, figures.
# Optional: the Snakefile includes this stage only where the config has a `connectivity` section.


include: "connectivity_helpers.smk"


if BUDGETS:  # θ0 itself or hub encoders need none

    rule pretrain_budget:
        input:
            train="results/tokens/theta0/train.tokens",
            val="results/tokens/theta0/val.tokens",
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
            mem_mb=job_memory("pretrain_budget"),
            runtime=job_runtime("pretrain_budget"),
        params:
            code=code("scripts/pretrain_budget.py"),
            name="theta0",
            arch=canonical(config["model"]),
            hp=budget_hyperparameters,
            seed=config["pretrain"]["seeds"]["theta0"],
            device=config["device"],
            dtype=config["dtype"],
            resume="resources/resume/pretrain_budget/steps{steps}",  # training states: outside the outputs, which a failed job loses
        script:
            "../../scripts/pretrain_budget.py"


rule finetune_classifier:
    input:
        base=classifier_base,
        movie=rules.prepare_movie.output.movie,
    output:
        checkpoints=directory(
            "results/connectivity/finetune/{size}/{method}/checkpoints"
        ),
        loss="results/connectivity/finetune/{size}/{method}/loss.parquet",
        data="results/connectivity/finetune/{size}/{method}/data.json",
    log:
        "logs/finetune_classifier/{size}/{method}.log",
    benchmark:
        "benchmarks/finetune_classifier/{size}/{method}.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    threads: 1
    resources:
        gpu=GPUS,
        mem_mb=job_memory("finetune_classifier"),
        runtime=job_runtime("finetune_classifier"),
    params:
        code=code("scripts/finetune_classifier.py"),
        hp=canonical(LMC["finetune"]),
        lora=lora_settings,
        data=task_settings(),
        seeds=LMC["seeds"],
        device=config["device"],
        dtype=config["dtype"],
        resume="resources/resume/finetune_classifier/{size}/{method}",  # training states: outside the outputs, which a failed job loses
    script:
        "../../scripts/finetune_classifier.py"


rule connect:
    input:
        checkpoints=rules.finetune_classifier.output.checkpoints,
        movie=rules.prepare_movie.output.movie,
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
        mem_mb=job_memory("connect"),
        runtime=job_runtime("connect"),
    params:
        code=code("scripts/connect.py"),
        data=lmc_settings(),
        seeds=LMC["seeds"],
        max_length=LMC["finetune"]["max_length"],
        device=config["device"],
        dtype=config["dtype"],
    script:
        "../../scripts/connect.py"


rule bezier:
    input:
        unpack(curve_inputs),
        movie=rules.prepare_movie.output.movie,
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
        mem_mb=job_memory("bezier"),
        runtime=job_runtime("bezier"),
    params:
        code=code("scripts/bezier.py"),
        pair="{pair}",
        seeds=LMC["seeds"][:2],  # a curve joins the first two seeds
        settings=canonical(LMC["curves"]),
        data=lmc_settings(),
        max_length=LMC["finetune"]["max_length"],
        device=config["device"],
        dtype=config["dtype"],
    script:
        "../../scripts/bezier.py"


rule tabulate_connectivity:
    input:
        barriers=[
            expand(rules.connect.output.barriers, size=size, method=method)[0]
            for size, method in lmc_jobs()
        ],
        data=[
            expand(rules.finetune_classifier.output.data, size=size, method=method)[0]
            for size, method in lmc_jobs()
        ],
    output:
        **connectivity_tables(),
        barriers="results/tables/connectivity_barriers.parquet",
        data="results/tables/connectivity_data.json",
    log:
        "logs/tabulate_connectivity/tables.log",
    benchmark:
        "benchmarks/tabulate_connectivity/tables.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    resources:
        mem_mb=job_memory("tabulate_connectivity"),
        runtime=job_runtime("tabulate_connectivity"),
    params:
        code=code("scripts/tabulate_connectivity.py"),
        models=lmc_model_labels(),
        quantities=LMC_QUANTITIES,
    script:
        "../../scripts/tabulate_connectivity.py"


rule plot_connectivity:
    input:
        barriers=rules.tabulate_connectivity.output.barriers,
        curves=expand(rules.bezier.output.curves, pair=CURVE_PAIRS),
    output:
        steps=figure(
            "connectivity_steps",
            "../report/connectivity_steps.rst",
            "Mode connectivity",
        ),
        curves=figure(
            "connectivity_curves",
            "../report/connectivity_curves.rst",
            "Mode connectivity",
        ),
    log:
        "logs/plot_connectivity/figures.log",
    benchmark:
        "benchmarks/plot_connectivity/figures.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    resources:
        mem_mb=job_memory("plot_connectivity"),
        runtime=job_runtime("plot_connectivity"),
    params:
        code=code("scripts/plot_connectivity.py"),
        pairs=CURVE_PAIRS,
    script:
        "../../scripts/plot_connectivity.py"
