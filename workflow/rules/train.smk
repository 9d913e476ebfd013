# θ0 and θC4 pretrained from scratch where the config asks for them (same GPT-2 architecture and
# tokenizer, independent seeds, disjoint corpora); θ+ and θ− fine-tuned from θ0, one job per grid
# candidate, the best kept.


include: "train_helpers.smk"


if PRETRAINED:  # none where θ0 comes from the hub and no θC4 is asked for

    rule pretrain:
        input:
            train="results/tokens/{model}/train.tokens",
            val="results/tokens/{model}/val.tokens",
            tokenizer=TOKENIZER,
        output:
            model=directory("results/models/{model}"),
            loss="results/pretrain/{model}/loss.parquet",
            metrics="results/pretrain/{model}/metrics.json",
        log:
            "logs/pretrain/{model}.log",
        benchmark:
            "benchmarks/pretrain/{model}.tsv"
        conda:
            "../../envs/lmlerp.yaml"
        threads: 1
        resources:
            gpu=GPUS,
            mem_mb=job_memory("pretrain"),
            runtime=job_runtime("pretrain"),
        params:
            code=code("scripts/pretrain.py"),
            name="{model}",
            arch=canonical(config["model"]),
            hp=pretrain_hyperparameters(),
            seed=pretrain_seed,
            device=config["device"],
            dtype=config["dtype"],
            resume="resources/resume/pretrain/{model}",  # training states: outside the outputs, which a failed job loses
        script:
            "../../scripts/pretrain.py"


rule finetune:
    input:
        theta0=MODELS["theta0"],
        movie=rules.prepare_movie.output.movie,
    output:
        model=directory("results/finetune/{sentiment}/{candidate}/model"),
        loss="results/finetune/{sentiment}/{candidate}/loss.parquet",
        metrics="results/finetune/{sentiment}/{candidate}/metrics.json",
    log:
        "logs/finetune/{sentiment}/{candidate}.log",
    benchmark:
        "benchmarks/finetune/{sentiment}/{candidate}.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    threads: 1
    resources:
        gpu=GPUS,
        mem_mb=job_memory("finetune"),
        runtime=job_runtime("finetune"),
    params:
        code=code("scripts/finetune.py"),
        candidate=candidate_settings,
        hp=finetune_hyperparameters(),
        sentiment=sentiment_name,
        device=config["device"],
        dtype=config["dtype"],
        resume="resources/resume/finetune/{sentiment}/{candidate}",  # training states: outside the outputs, which a failed job loses
    script:
        "../../scripts/finetune.py"


rule select_finetune:
    input:
        metrics=candidate_metrics,
        models=candidate_models,
    output:
        table="results/finetune/{sentiment}/candidates.tsv",
        model=directory("results/models/theta_{sentiment}"),
    log:
        "logs/select_finetune/{sentiment}.log",
    benchmark:
        "benchmarks/select_finetune/{sentiment}.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    resources:
        mem_mb=job_memory("select_finetune"),
        runtime=job_runtime("select_finetune"),
    params:
        code=code("scripts/select_finetune.py"),
        candidates=list(CANDIDATES),
    script:
        "../../scripts/select_finetune.py"


# Paper scale: Fig 9 (a) compares DistilGPT-2 with DistilGPT-2 fine-tuned on positive text, so
# that both panels share one model size; where θ0 is the reference, θ+ already is that model.
rule finetune_reference:
    input:
        reference=REFERENCE,
        movie=rules.prepare_movie.output.movie,
        selection=expand(rules.select_finetune.output.table, sentiment="pos")[0],
    output:
        model=directory("results/models/reference_pos"),
        loss="results/finetune_reference/loss.parquet",
        metrics="results/finetune_reference/metrics.json",
    log:
        "logs/finetune_reference/finetune_reference.log",
    benchmark:
        "benchmarks/finetune_reference/finetune_reference.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    threads: 1
    resources:
        gpu=GPUS,
        mem_mb=job_memory("finetune_reference"),
        runtime=job_runtime("finetune_reference"),
    params:
        code=code("scripts/finetune_reference.py"),
        candidates=canonical(CANDIDATES),
        hp=finetune_hyperparameters(),
        device=config["device"],
        dtype=config["dtype"],
        resume="resources/resume/finetune_reference",  # training states: outside the outputs, which a failed job loses
    script:
        "../../scripts/finetune_reference.py"
