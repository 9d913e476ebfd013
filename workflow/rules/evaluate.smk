# Every path point and DExperts α: rebuilt in memory, sampled, scored — a chunk of points per job.


include: "evaluate_helpers.smk"


rule evaluate:
    input:
        unpack(evaluation_inputs),
        unpack(scorer_inputs),  # sentiment / grammar / judge_lm models, by scorer kind
        prompts=rules.prepare_prompts.output.prompts,
        movie=rules.prepare_movie.output.movie,
    output:
        samples="results/evaluate/{family}/{chunk}/samples.parquet",
        points="results/evaluate/{family}/{chunk}/points.parquet",
        recipes=directory("results/evaluate/{family}/{chunk}/recipes"),
    log:
        "logs/evaluate/{family}/{chunk}.log",
    benchmark:
        "benchmarks/evaluate/{family}/{chunk}.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    threads: 1
    resources:
        gpu=GPUS,
        mem_mb=job_memory("evaluate"),
        runtime=job_runtime("evaluate"),
    params:
        code=code("scripts/evaluate.py"),
        family="{family}",
        grid=chunk_points,
        bases=base_names,
        sampling=sampling_settings,
        settings=canonical(config["evaluation"]),
        scorers=canonical(config["scorers"]),
        filter_p=config["dexperts"]["filter_p"],
        device=config["device"],
        dtype=config["dtype"],
        merge=merge_spec,  # a merge family's method, parameters and mergekit YAML
        cache="results/cache/points",  # finished points by content key (evaluate/cache.py)
    script:
        "../../scripts/evaluate.py"


rule aggregate:
    input:
        points=chunk_outputs,
        samples=chunk_samples,
    output:
        table="results/tables/{family}.parquet",
        trends="results/tables/{family}_trends.json",
    log:
        "logs/aggregate/{family}.log",
    benchmark:
        "benchmarks/aggregate/{family}.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    resources:
        mem_mb=job_memory("aggregate"),
        runtime=job_runtime("aggregate"),
    params:
        code=code("scripts/aggregate.py"),
        family="{family}",
        statistics=canonical(config["statistics"]),
    script:
        "../../scripts/aggregate.py"
