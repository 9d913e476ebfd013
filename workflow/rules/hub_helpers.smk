# Grids, wildcard constraints and input/params functions of the rules in hub.smk.
import re

# Connectivity encoders from the hub (paper scale: BERT, RoBERTa), by model name (none without
# a connectivity section).
LMC_HUB = {
    size: entry["source"]
    for size, entry in config.get("connectivity", {}).get("models", {}).items()
    if "source" in entry
}


# Hub models fetched (a repo or a local path) and those converted from a GGUF file.
GGUF_MODELS = [name for name, source in HUB_MODELS.items() if "gguf" in source]
FETCHED_MODELS = [name for name in HUB_MODELS if name not in GGUF_MODELS]


def gguf_part_assets(wildcards):
    """The asset directory of every part of GGUF file `wildcards.gguf`, in order."""
    return [
        f"resources/{asset}"
        for asset, _ in lmlerp_config.gguf_parts(config, wildcards.gguf)
    ]


def gguf_part_members(wildcards):
    """The member file name of every part inside its asset directory, in order."""
    return [member for _, member in lmlerp_config.gguf_parts(config, wildcards.gguf)]


def model_source(wildcards):
    return canonical(HUB_MODELS[wildcards.name])


def encoder_source(wildcards):
    return canonical(LMC_HUB[wildcards.size])


def dataset_source(wildcards):
    return canonical(HUB_DATASETS[wildcards.dataset])


def prompt_source(wildcards):
    return canonical(HUB["prompts"][wildcards.kind])
