# The 3-class sentiment judge (TF-IDF + logistic regression), stored without pickle.


rule train_judge:
    input:
        judge_data="results/prepare/judge_data.parquet",
        movie="results/prepare/movie.parquet",
    output:
        judge=directory("results/judge"),
        metrics="results/judge_metrics.json",
    log:
        "logs/train_judge/judge.log",
    benchmark:
        "benchmarks/train_judge/judge.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    params:
        settings=judge_settings(),
    script:
        "../../scripts/train_judge.py"
