# θ0 and θC4: the same GPT-2 architecture and tokenizer, independent seeds, disjoint corpora.


rule pretrain:
    input:
        corpus="results/prepare/corpus.parquet",
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
        arch=canonical(config["model"]),
        hp=pretrain_hyperparameters(),
        seed=pretrain_seed,
        device=config["device"],
        dtype=config["dtype"],
    script:
        "../../scripts/pretrain.py"
