"""Configuration rules that span several keys: what the JSON schema cannot say.

Each check raises ConfigError naming the key, before any job runs (`lmlerp.config.validate` calls
`check` after the schema). `check_device` runs later, at the start of a local run: only then is it
known that the jobs will run on this machine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lmlerp.config import parts


class ConfigError(ValueError):
    """A configuration that the workflow refuses to run."""


def check(config: Mapping[str, Any]) -> None:
    """Every cross-key rule below, in order; the first violation raises ConfigError."""
    _check_needed(config)
    _check_semantics(config)
    _check_pretraining(config)
    _check_sources(config)
    _check_gguf(config)
    _check_merges(config)


def _check_needed(config: Mapping[str, Any]) -> None:
    """The from-scratch sections the schema leaves optional, where this config pretrains an LM
    (`parts.needed_keys`): the error says which model needs the key."""
    for key, why in parts.needed_keys(config).items():
        node: Any = config
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise ConfigError(f"config key '{key}' is required but missing: {why}")
            node = node[part]


def _check_semantics(config: Mapping[str, Any]) -> None:
    """Rules that span several keys; each raises ConfigError naming the key."""
    for key in ("movie_splits", "corpus_splits"):
        total = sum(config["data"][key].values())
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ConfigError(f"config key 'data.{key}': shares must sum to 1, they sum to {total}")
    if config["prompts"]["min_tokens"] > config["prompts"]["max_tokens"]:
        raise ConfigError("config key 'prompts.min_tokens' must not exceed 'prompts.max_tokens'")
    if config["finetune"]["warmup_steps"] >= min(config["finetune"]["steps"]):
        raise ConfigError(
            "config key 'finetune.warmup_steps' must be smaller than every finetune.steps value"
        )
    _check_data_sources(config)
    _check_evaluation(config)
    if "connectivity" in config:
        _check_connectivity(config["connectivity"])


def _check_pretraining(config: Mapping[str, Any]) -> None:
    """The from-scratch architecture and recipe, wherever they are given."""
    model, pretrain = config.get("model"), config.get("pretrain")
    if model and model["n_embd"] % model["n_head"]:
        raise ConfigError(
            f"config key 'model.n_head': {model['n_head']} does not divide "
            f"model.n_embd = {model['n_embd']}"
        )
    if not pretrain:
        return
    if model and pretrain["block_size"] > model["n_positions"]:
        raise ConfigError(
            f"config key 'pretrain.block_size': {pretrain['block_size']} exceeds the context "
            f"length model.n_positions = {model['n_positions']}"
        )
    if pretrain["warmup_steps"] >= pretrain["steps"]:
        raise ConfigError("config key 'pretrain.warmup_steps' must be smaller than pretrain.steps")
    seeds = pretrain["seeds"]
    if "theta_c4" in seeds and seeds.get("theta0") == seeds["theta_c4"]:
        raise ConfigError(
            "config key 'pretrain.seeds.theta_c4' must differ from pretrain.seeds.theta0: "
            "θC4 is an independently initialised model"
        )


def _check_data_sources(config: Mapping[str, Any]) -> None:
    """Every split a later job reads must receive a share (else it fails hours in, empty)."""
    movie, corpus, prompts = (
        config["data"]["movie_splits"],
        config["data"]["corpus_splits"],
        config["prompts"],
    )
    needed = {
        "data.movie_splits.train": movie["train"],  # fine-tuning
        "data.movie_splits.val": movie["val"],  # model selection
        "data.movie_splits.test": movie["test"],  # test NLL (Fig 8)
    }
    for name in parts.pretrained_here(config):  # their pretraining corpora
        needed[f"data.corpus_splits.{name}"] = corpus[name]
    if "movie" in config["judge"]["domains"]:
        needed["data.movie_splits.judge"] = movie["judge"]
    if prompts["positive"] or prompts["negative"]:
        needed["data.movie_splits.prompts"] = movie["prompts"]
    if prompts["neutral"]:
        needed["data.corpus_splits.heldout"] = corpus["heldout"]
    for key, share in needed.items():
        if share <= 0:
            raise ConfigError(f"config key '{key}' is 0, but a later stage reads that split")
    if not (prompts["neutral"] + prompts["positive"] + prompts["negative"] + len(prompts["fixed"])):
        raise ConfigError("config key 'prompts': no prompt at all (every count is 0, no fixed one)")


def _check_evaluation(config: Mapping[str, Any]) -> None:
    """Generation must fit the context (of the LMs pretrained here: a hub θ0's is its own);
    scored samples must exist; Fig-4 words must not clash."""
    room = (
        config["model"]["n_positions"] - config["prompts"]["max_tokens"] - 1  # 1: EOS
        if parts.pretrained_here(config)
        else None
    )
    if room is not None and config["generation"]["max_new_tokens"] > room:
        raise ConfigError(
            f"config key 'generation.max_new_tokens': {config['generation']['max_new_tokens']} "
            f"new tokens after a prompt of up to prompts.max_tokens = "
            f"{config['prompts']['max_tokens']} (+ EOS) exceed model.n_positions = "
            f"{config['model']['n_positions']}"
        )
    scored, drawn = (
        config["evaluation"]["perplexity_samples"],
        config["generation"]["samples_per_prompt"],
    )
    if scored > drawn:
        raise ConfigError(
            f"config key 'evaluation.perplexity_samples': {scored} exceeds "
            f"generation.samples_per_prompt = {drawn}"
        )
    words = config["evaluation"]["words"]
    both = sorted(set(words["positive"]) & set(words["negative"]))
    if both:
        raise ConfigError(
            f"config key 'evaluation.words': {both[0]!r} is listed as positive and as negative"
        )


def _check_sources(config: Mapping[str, Any]) -> None:
    """Hub sources: exactly one of repo / path / gguf, a revision with a repo only, file
    patterns for hub datasets, and data that the paper-scale DAG can actually use together."""
    hub = config.get("hub", {})
    sources = [
        (f"hub.{group}.{name}", source, group == "datasets")
        for group in ("models", "datasets")
        for name, source in hub.get(group, {}).items()
    ]
    sources += [
        (f"connectivity.models.{name}.source", entry["source"], False)
        for name, entry in config.get("connectivity", {}).get("models", {}).items()
        if "source" in entry
    ]
    for key, source, dataset in sources:
        if sum(kind in source for kind in ("repo", "path", "gguf")) != 1:
            raise ConfigError(f"config key '{key}': give exactly one of 'repo', 'path' or 'gguf'")
        if "repo" in source and "revision" not in source:
            raise ConfigError(f"config key '{key}.revision' is required with a repo")
        if "revision" in source and "repo" not in source:
            raise ConfigError(f"config key '{key}.revision' means something for a repo only")
        if "gguf" in source and not key.startswith("hub.models."):
            raise ConfigError(f"config key '{key}.gguf': a GGUF file is a model of hub.models")
        if dataset and "repo" in source and "files" not in source:
            raise ConfigError(
                f"config key '{key}.files' is required for a hub dataset (C4 alone is "
                "hundreds of GB: name the shards to take)"
            )
    datasets, models = hub.get("datasets", {}), hub.get("models", {})
    if "corpus" in datasets and "theta0" not in models:
        raise ConfigError(
            "config key 'hub.datasets.corpus': a C4 corpus only trains θC4; "
            "θ0 must then come from hub.models.theta0"
        )
    if "corpus" in datasets and not parts.decorrelated(config):
        raise ConfigError(
            "config key 'hub.datasets.corpus': a C4 corpus only trains θC4, which only "
            "paths.decorrelated uses, and that is not set"
        )
    if "reference" in models and not parts.decorrelated(config):
        raise ConfigError(
            "config key 'hub.models.reference': the reference is the first base of "
            "paths.decorrelated (and Fig 9's), which is not set"
        )
    for score, kind in config["scorers"].items():
        if kind == "transformers" and score not in models:
            raise ConfigError(
                f"config key 'scorers.{score}': a transformers scorer reads "
                f"hub.models.{score}, which is not set"
            )
    if "movie" in datasets and config["scorers"]["sentiment"] == "tfidf":
        raise ConfigError(
            "config key 'scorers.sentiment': the TF-IDF judge trains on the movie data's judge "
            "split, which SST-5 (hub.datasets.movie) lacks; use transformers"
        )
    budgets = parts.budgets(config)
    if budgets and "theta0" in models:
        raise ConfigError(
            f"config key 'connectivity.models.{budgets[0]}.pretrain_steps': θ0 comes from "
            "hub.models.theta0, so there is no θ0 recipe to re-run at another budget"
        )
    if datasets and "prompts" not in hub:
        raise ConfigError(
            "config key 'hub.prompts' is required with hub datasets: SST-5 and C4 have no "
            "prompt split to cut prompts from"
        )


def _check_connectivity(lmc: Mapping[str, Any]) -> None:
    """Cross-key rules of the mode-connectivity section."""
    if lmc["curves"]["model"] not in lmc["models"]:
        raise ConfigError(
            f"config key 'connectivity.curves.model': '{lmc['curves']['model']}' is not one of "
            f"connectivity.models ({', '.join(lmc['models'])})"
        )
    finetune = lmc["finetune"]
    if finetune["warmup_steps"] >= finetune["steps"]:
        raise ConfigError(
            "config key 'connectivity.finetune.warmup_steps' must be smaller than its steps"
        )
    if finetune["checkpoint_every"] > finetune["steps"]:
        raise ConfigError("config key 'connectivity.finetune.checkpoint_every' exceeds its steps")
    if lmc["task"] != "movie_sentiment" and lmc["glue"]["path"] is None:
        raise ConfigError(
            f"config key 'connectivity.glue.path': task {lmc['task']} needs a GLUE task directory"
        )


def _check_merges(config: Mapping[str, Any]) -> None:
    """Every merge family resolves (its method's keys, known bases, a readable and supported
    mergekit YAML, parameters in range): `lmlerp.space.families`, torch-free. A base θC4 exists
    only with paths.decorrelated."""
    from lmlerp.space import families, mergekit_yaml

    builtin = [name for name in config["paths"] if name != "merges"]
    merges = config["paths"].get("merges", {})
    try:
        families.check_entries(merges, builtin, mergekit_yaml.read)
        resolved = {} if parts.decorrelated(config) else {
            n: families.resolve(n, e, mergekit_yaml.read) for n, e in merges.items()
        }  # fmt: skip
    except families.FamilyError as error:
        raise ConfigError(str(error)) from None
    uses_c4 = [n for n, spec in resolved.items() if "theta_c4" in families.family_bases(spec)]
    if uses_c4:
        raise ConfigError(
            f"config key 'paths.merges.{uses_c4[0]}': base theta_c4 is θC4, which is pretrained "
            "only for paths.decorrelated, and that is not set"
        )


def visible_cuda_devices() -> int:
    """How many CUDA devices torch sees here (0 with a CPU-only build)."""
    import torch  # only when a config asks for CUDA: torch costs seconds to import

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_device(device: str, visible: int | None = None) -> None:
    """Refuse a CUDA device this machine does not have (local runs; a cluster node checks its own).

    Args:
        device: the config's `device`, e.g. 'cpu', 'cuda', 'cuda:1'.
        visible: CUDA devices visible here; by default `visible_cuda_devices()`.
    """
    if not device.startswith("cuda"):
        return
    if visible is None:
        visible = visible_cuda_devices()
    index = int(device.partition(":")[2] or 0)
    if visible == 0:
        raise ConfigError(
            f"config key 'device': {device!r}, but torch sees no CUDA device on this machine "
            "(CPU-only build or no GPU); use device: cpu, or run on a GPU node"
        )
    if index >= visible:
        raise ConfigError(
            f"config key 'device': {device!r}, but only {visible} CUDA device(s) are visible "
            f"(valid: {', '.join(f'cuda:{i}' for i in range(visible))})"
        )


def _check_gguf(config: Mapping[str, Any]) -> None:
    """GGUF LMs: every part an extracted member of a configured asset, every {gguf} source a
    name in config `gguf`, and `eos_token` only where a GGUF is converted."""
    files = config.get("gguf", {})
    for name in files:
        for i, (asset, member) in enumerate(parts.gguf_parts(config, name)):
            if asset not in config["assets"]:
                raise ConfigError(f"config key 'gguf.{name}.parts[{i}]': no asset '{asset}'")
            if member not in config["assets"][asset]["members"]:
                raise ConfigError(
                    f"config key 'gguf.{name}.parts[{i}]': asset '{asset}' extracts no member "
                    f"'{member}' (its members: {sorted(config['assets'][asset]['members'])})"
                )
    for role, source in config.get("hub", {}).get("models", {}).items():
        if "gguf" in source and source["gguf"] not in files:
            raise ConfigError(
                f"config key 'hub.models.{role}.gguf': '{source['gguf']}' is not a name in "
                f"config 'gguf' ({sorted(files) or 'none'})"
            )
        if "eos_token" in source and "gguf" not in source:
            raise ConfigError(
                f"config key 'hub.models.{role}.eos_token' applies to a gguf source only"
            )
