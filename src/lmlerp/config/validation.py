"""Validation of a config against the closed JSON schema, then the cross-key rules.

The schema (`schema.yaml`, shipped inside the package so that a non-editable install finds it)
is closed at every level, so a misspelt key is an error rather than a silently ignored setting.
`validate` turns the first violation into one line that names the key, e.g.
``config key 'finetune.lr[1]': -0.1 is less than or equal to 0``.

Snakemake parses the workflow at every invocation, a no-op re-run included. With a `cache`
directory, a config that passed once is recognised by a fingerprint of its content, the schema
and this package's validation code, and not validated again (jsonschema alone costs ≈0.1 s).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    import jsonschema

from lmlerp.config.checks import ConfigError, check

_YAML11_FLOAT = re.compile(r"^[-+]?[0-9]*\.?[0-9]+[eE][-+]?[0-9]+$")


def _package_text(name: str) -> str:
    return importlib.resources.files("lmlerp.config").joinpath(name).read_text()


@functools.cache
def schema() -> dict[str, Any]:
    """The config schema, read once from the package data."""
    # libyaml's loader when PyYAML has it: ≈10× faster on the 550-line schema, read at every parse
    return yaml.load(
        _package_text("schema.yaml"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    )


def fingerprint(config: Mapping[str, Any]) -> str:
    """sha256 of the config's content and of everything that judges it: the schema and the code
    of the checks, so that an edit to either validates every config again."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=repr).encode())
    for name in ("schema.yaml", "checks.py", "parts.py", "validation.py"):
        digest.update(_package_text(name).encode())
    return digest.hexdigest()


def key_path(parts: list[Any] | tuple[Any, ...]) -> str:
    """Spell a JSON path as a config key: ['finetune', 'lr', 1] → 'finetune.lr[1]'."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<top level>"


def non_finite_key(value: Any, parts: tuple[Any, ...] = ()) -> str | None:
    """The key of the first NaN or ±inf number anywhere in the config (YAML `.nan`, `.inf`), or
    None. JSON Schema cannot refuse them: every comparison with NaN is false, so a NaN passes
    any `minimum`, and an unbounded number takes inf; a grid coordinate of NaN would then name a
    path point `alpha_nan` and run jobs that can only produce nonsense."""
    if isinstance(value, float) and not math.isfinite(value):
        return key_path(parts)
    children = value.items() if isinstance(value, Mapping) else (
        enumerate(value) if isinstance(value, list) else ()
    )  # fmt: skip
    for key, child in children:
        found = non_finite_key(child, (*parts, key))
        if found is not None:
            return found
    return None


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


def validate(config: Mapping[str, Any], cache: str | Path | None = None) -> None:
    """Raise ConfigError naming the first offending key, or return if the config is valid.

    Args:
        config: the whole config.
        cache: a directory that remembers the fingerprints of configs that passed (the workflow
            gives `.snakemake/lmlerp/valid-configs`); None validates every time.
    """
    stamp = Path(cache) / fingerprint(config) if cache is not None else None
    if stamp is not None and stamp.is_file():
        return
    culprit = non_finite_key(config)
    if culprit is not None:
        raise ConfigError(f"config key '{culprit}' is not a finite number (NaN or infinity)")
    import jsonschema  # here: a remembered config needs no validator at all

    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        raise ConfigError(_schema_message(errors[0]))
    check(config)
    if stamp is not None:
        try:
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.touch()
        except OSError:  # a read-only working directory: validate again next time
            pass


def load(path: str | Path) -> dict[str, Any]:
    """Read and validate a YAML config file."""
    config = yaml.safe_load(Path(path).read_text())
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys to values")
    validate(config)
    return config
