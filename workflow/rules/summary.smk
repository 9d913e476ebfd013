# One machine-readable file of the numbers every stage measured.


rule summarize:
    input:
        **summary_inputs(),
        pretrain_metrics=expand(
            "results/pretrain/{model}/metrics.json", model=PRETRAINED
        ),
        selections=expand(
            "results/finetune/{sentiment}/candidates.tsv", sentiment=SENTIMENTS
        ),
        tables=expand("results/tables/{family}.parquet", family=FAMILIES),
        connectivity="results/tables/connectivity_barriers.parquet",
        curves=lmc_curve_tables(),
    output:
        summary="results/summary.json",
    log:
        "logs/summarize/summary.log",
    benchmark:
        "benchmarks/summarize/summary.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    params:
        pretrained=PRETRAINED,
        families=FAMILIES,
        benchmarks=benchmark_files(),
        sources=canonical(provenance()),
    script:
        "../../scripts/summarize.py"
