"""Configuration checks that run before any job: the JSON schema, then what a schema cannot say.

The schema (workflow/schemas/config.schema.yaml) is closed at every level, so a misspelt key is an
error rather than a silently ignored setting. `validate` turns the first violation into one line
that names the key, e.g. ``config key 'finetune.lr[1]': -0.1 is less than or equal to 0``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
_YAML11_FLOAT = re.compile(r"^[-+]?[0-9]*\.?[0-9]+[eE][-+]?[0-9]+$")


class ConfigError(ValueError):
    """A configuration that the workflow refuses to run."""


def key_path(parts: list[Any] | tuple[Any, ...]) -> str:
    """Spell a JSON path as a config key: ['finetune', 'lr', 1] → 'finetune.lr[1]'."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<top level>"


def _schema_message(error: jsonschema.ValidationError) -> str:
    """One readable line for a schema violation, naming the offending key."""
    parts = list(error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        where = key_path([*parts, extra[0]]) if extra else key_path(parts)
        return f"config key '{where}' is not a known setting (allowed here: {allowed})"
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return f"config key '{key_path([*parts, missing])}' is required but missing"
    message = f"config key '{key_path(parts)}': {error.message}"
    if isinstance(error.instance, str) and _YAML11_FLOAT.match(error.instance):
        message += f" (YAML reads {error.instance} as text; write it with a dot, e.g. 1.0e-4)"
    return message


def _check_semantics(config: Mapping[str, Any]) -> None:
    """Rules that span several keys; each raises ConfigError naming the key."""
    for key in ("movie_splits", "corpus_splits"):
        total = sum(config["data"][key].values())
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ConfigError(f"config key 'data.{key}': shares must sum to 1, they sum to {total}")
    if config["prompts"]["min_tokens"] > config["prompts"]["max_tokens"]:
        raise ConfigError("config key 'prompts.min_tokens' must not exceed 'prompts.max_tokens'")
    model = config["model"]
    if model["n_embd"] % model["n_head"]:
        raise ConfigError(
            f"config key 'model.n_head': {model['n_head']} does not divide "
            f"model.n_embd = {model['n_embd']}"
        )
    pretrain = config["pretrain"]
    if pretrain["block_size"] > model["n_positions"]:
        raise ConfigError(
            f"config key 'pretrain.block_size': {pretrain['block_size']} exceeds the context "
            f"length model.n_positions = {model['n_positions']}"
        )
    if pretrain["warmup_steps"] >= pretrain["steps"]:
        raise ConfigError("config key 'pretrain.warmup_steps' must be smaller than pretrain.steps")
    if pretrain["seeds"]["theta0"] == pretrain["seeds"]["theta_c4"]:
        raise ConfigError(
            "config key 'pretrain.seeds.theta_c4' must differ from pretrain.seeds.theta0: "
            "θC4 is an independently initialised model"
        )
    if config["finetune"]["warmup_steps"] >= min(config["finetune"]["steps"]):
        raise ConfigError(
            "config key 'finetune.warmup_steps' must be smaller than every finetune.steps value"
        )
    _check_connectivity(config["connectivity"])


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


def validate(config: Mapping[str, Any], schema_path: Path = SCHEMA) -> None:
    """Raise ConfigError naming the first offending key, or return if the config is valid."""
    schema = yaml.safe_load(schema_path.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        raise ConfigError(_schema_message(errors[0]))
    _check_semantics(config)


def load(path: str | Path) -> dict[str, Any]:
    """Read and validate a YAML config file."""
    config = yaml.safe_load(Path(path).read_text())
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys to values")
    validate(config)
    return config
