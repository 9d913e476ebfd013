# Grids, wildcard constraints and input/params functions of the rules in train.smk.
import re

from lmlerp.space import labels

CANDIDATES = labels.candidates(
    config["finetune"]["lr"],
    config["finetune"]["batch_size"],
    config["finetune"]["steps"],
)


wildcard_constraints:
    candidate="|".join(map(re.escape, CANDIDATES)),


def pretrain_hyperparameters():
    """Pretraining settings shared by θ0 and θC4 (everything but the per-model seeds)."""
    return canonical({k: v for k, v in config["pretrain"].items() if k != "seeds"})


def pretrain_seed(wildcards):
    return config["pretrain"]["seeds"][wildcards.model]


def finetune_hyperparameters():
    """Grid-independent fine-tuning settings shared by every candidate."""
    grid = ("lr", "batch_size", "steps")
    return canonical({k: v for k, v in config["finetune"].items() if k not in grid})


def candidate_settings(wildcards):
    return canonical(CANDIDATES[wildcards.candidate])


def sentiment_name(wildcards):
    return SENTIMENTS[wildcards.sentiment]


def candidate_metrics(wildcards):
    return expand(
        rules.finetune.output.metrics,
        sentiment=wildcards.sentiment,
        candidate=CANDIDATES,
    )


def candidate_models(wildcards):
    return expand(
        rules.finetune.output.model,
        sentiment=wildcards.sentiment,
        candidate=CANDIDATES,
    )
