# The judges of every continuation that this workflow builds itself: the 3-class TF-IDF
# sentiment judge (stored without pickle) and the SmolLM2 judge LM, converted once from GGUF.


rule train_judge:
    input:
        judge_data=rules.prepare_judge_data.output.judge_data,
        movie=rules.prepare_movie.output.movie,
    output:
        judge=directory("results/judge"),
        metrics="results/judge_metrics.json",
    log:
        "logs/train_judge/judge.log",
    benchmark:
        "benchmarks/train_judge/judge.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    resources:
        mem_mb=job_memory("train_judge"),
        runtime=job_runtime("train_judge"),
    params:
        code=code("scripts/train_judge.py"),
        settings=canonical(
            {
                **{k: config["judge"][k] for k in ("max_features", "ngram_max", "C")},
                "seed": config["seed"],
            }
        ),
    script:
        "../../scripts/train_judge.py"


rule convert_judge_lm:
    input:
        asset="resources/smollm2",
    output:
        model=directory("results/models/judge_lm"),
    log:
        "logs/convert_judge_lm/judge_lm.log",
    benchmark:
        "benchmarks/convert_judge_lm/judge_lm.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    resources:
        mem_mb=job_memory("convert_judge_lm"),
        runtime=job_runtime("convert_judge_lm"),
    params:
        code=code("scripts/convert_judge_lm.py"),
    script:
        "../../scripts/convert_judge_lm.py"
