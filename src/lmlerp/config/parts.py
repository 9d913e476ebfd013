"""Which optional parts of the experiment a config has, and which sections they need.

Two parts may be left out: `paths.decorrelated` (θ0 ↔ θC4, a twin pretrained from scratch on
another corpus: Figs 9 and 10) and the whole `connectivity` section. `tokenizer`, `model` and
`pretrain` configure pretraining from scratch, so they are needed only where something is
pretrained here: a config whose θ0 comes from `hub.models.theta0` (a pretrained LM) needs none
of them; nor does it need the `resources` entries of jobs it does not run. The schema leaves
these keys optional, `checks` requires them where needed. Torch-free: the workflow asks at every
parse which LMs to pretrain.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Why each LM pretrained here needs the from-scratch sections (the end of the ConfigError).
WHY = {
    "theta0": "θ0 is pretrained from scratch here (hub.models.theta0 is not set)",
    "theta_c4": "paths.decorrelated interpolates θC4, which is pretrained from scratch here",
}


def decorrelated(config: Mapping[str, Any]) -> bool:
    """Whether the config walks the decorrelated pair θ0 ↔ θC4 (and so has θC4 and Figs 9, 10)."""
    return "decorrelated" in config["paths"]


def pretrained_here(config: Mapping[str, Any]) -> list[str]:
    """The LMs pretrained from scratch, θ0 first: θ0 unless hub.models.theta0 gives it, θC4
    wherever paths.decorrelated interpolates it."""
    hub_models = config.get("hub", {}).get("models", {})
    return [
        *(["theta0"] if "theta0" not in hub_models else []),
        *(["theta_c4"] if decorrelated(config) else []),
    ]


def budgets(config: Mapping[str, Any]) -> list[str]:
    """The connectivity models that re-run θ0's pretraining recipe at a budget of their own
    (`pretrain_steps` other than pretrain.steps; equal to it, the model is θ0 itself)."""
    steps = config.get("pretrain", {}).get("steps")
    models = config.get("connectivity", {}).get("models", {})
    return [name for name, entry in models.items() if entry.get("pretrain_steps", steps) != steps]


def needed_keys(config: Mapping[str, Any]) -> dict[str, str]:
    """Each key the schema leaves optional that this config needs (dotted, parents first) → why:
    the from-scratch sections and the `resources` entries of the heavy jobs it runs.

    Connectivity budgets need no from-scratch reason of their own: they re-run θ0's recipe, so
    θ0 is pretrained here (with a hub θ0 they are refused, `checks`).
    """
    needed: dict[str, str] = {}
    for model in pretrained_here(config):
        for key in ("model", "pretrain", f"pretrain.seeds.{model}", "resources.pretrain"):
            needed.setdefault(key, WHY[model])
    if "theta0" in pretrained_here(config):  # a hub θ0 brings its own tokenizer
        needed["tokenizer"] = WHY["theta0"]
    if "connectivity" in config:
        for rule in ("finetune_classifier", "connect", "bezier"):
            needed[f"resources.{rule}"] = "the connectivity section runs its jobs"
    for name in budgets(config)[:1]:
        needed["resources.pretrain_budget"] = (
            f"connectivity.models.{name}.pretrain_steps re-runs θ0's recipe at its own budget"
        )
    if decorrelated(config) and "reference" in config.get("hub", {}).get("models", {}):
        needed["resources.finetune_reference"] = "hub.models.reference is fine-tuned for Fig 9 (a)"
    return needed


def gguf_parts(config: Mapping[str, Any], name: str) -> list[tuple[str, str]]:
    """(asset, member) of every part of GGUF file `name` in config `gguf`, in order: the
    member is a file that asset extracts into its directory."""
    return [tuple(part.split("/", 1)) for part in config["gguf"][name]["parts"]]
