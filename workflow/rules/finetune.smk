# θ+ and θ−: one job per grid candidate, then the best validation perplexity wins.


rule finetune:
    input:
        theta0=MODELS["theta0"],
        movie="results/prepare/movie.parquet",
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
        candidate=candidate_settings,
        hp=finetune_hyperparameters(),
        sentiment=sentiment_name,
        device=config["device"],
        dtype=config["dtype"],
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
    params:
        candidates=list(CANDIDATES),
    script:
        "../../scripts/select_finetune.py"
