# Grids, wildcard constraints and input/params functions of the rules in hub.smk.
import re

# Connectivity encoders from the hub (paper scale: BERT, RoBERTa), by model name (none without
# a connectivity section).
LMC_HUB = {
    size: entry["source"]
    for size, entry in config.get("connectivity", {}).get("models", {}).items()
    if "source" in entry
}


def model_source(wildcards):
    return canonical(HUB_MODELS[wildcards.name])


def encoder_source(wildcards):
    return canonical(LMC_HUB[wildcards.size])


def dataset_source(wildcards):
    return canonical(HUB_DATASETS[wildcards.dataset])


def prompt_source(wildcards):
    return canonical(HUB["prompts"][wildcards.kind])
