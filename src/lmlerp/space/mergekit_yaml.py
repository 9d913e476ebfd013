"""mergekit merge YAML files as lmlerp merges: evaluated in memory, no merged weights written.

A config family `paths.merges.<name>: {method: mergekit, yaml: FILE}` names a mergekit 0.1.5
merge configuration (the file `mergekit-yaml` reads). Its models are resolved to lmlerp's named
bases: a model string is looked up in the family's `bases` mapping (the string exactly as the
YAML writes it → a base name), or is itself a base name (theta0, theta_pos, theta_neg,
theta_c4). The YAML is then translated, with mergekit's own defaults, to `families.point_merge`'s
{"method", "params"}; `sweep: {parameter, values}` makes a family of one of its parameters.

Translated faithfully (mergekit 0.1.5's definitions, `docs/merging.md` for where they differ
from the papers): linear (normalize, default true), task_arithmetic (lambda; normalize false),
ties (density, lambda; normalize true), dare_linear and dare_ties (density = 1 − p; rescale
true means mergekit's L1-norm rescale; normalize false), slerp (t). Refused, naming the
feature: slices, modules, tokenizer_source, tokenizer, chat_template, any other merge_method,
LoRA model strings (`path+lora`), per-layer gradients (a list) and filtered parameters (a
mapping), unknown parameters. `dtype`/`out_dtype` are accepted: lmlerp accumulates in float32
and evaluates in the config's `dtype`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from lmlerp.space.families import BASES, FamilyError

TOP_LEVEL = {"merge_method", "base_model", "models", "parameters", "dtype", "out_dtype"}
UNSUPPORTED = {
    "slices": "slices (layer-range merges)",
    "modules": "modules (per-module merges)",
    "tokenizer_source": "tokenizer_source (lmlerp bases share one tokenizer)",
    "tokenizer": "tokenizer (lmlerp bases share one tokenizer)",
    "chat_template": "chat_template",
}
GTA = ("task_arithmetic", "ties", "dare_linear", "dare_ties")
# Per method: shared parameters with mergekit 0.1.5's defaults, per-model ones (None: required).
SHARED: dict[str, dict[str, Any]] = {
    "linear": {"normalize": True},
    "task_arithmetic": {"lambda": 1.0, "normalize": False, "rescale": False, "int8_mask": False},
    "ties": {"lambda": 1.0, "normalize": True, "rescale": False, "int8_mask": False},
    "dare_linear": {"lambda": 1.0, "normalize": False, "rescale": True, "int8_mask": False},
    "dare_ties": {"lambda": 1.0, "normalize": False, "rescale": True, "int8_mask": False},
    "slerp": {"t": None},
}
PER_MODEL: dict[str, dict[str, Any]] = {"slerp": {}, "linear": {"weight": None}}
PER_MODEL.update({m: {"weight": None, "density": 1.0} for m in GTA})


def read(path: str) -> dict[str, Any]:
    """A mergekit YAML file as a mapping; FamilyError naming the file otherwise."""
    try:
        document = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise FamilyError(f"mergekit YAML {path}: {error}") from None
    if not isinstance(document, dict):
        raise FamilyError(f"mergekit YAML {path}: not a mapping of keys to values")
    return document


def _scalar(value: Any, where: str, kind: type) -> Any:
    """A parameter's value, refusing gradients and filters by name."""
    if isinstance(value, list):
        raise FamilyError(f"{where}: per-layer gradients (a list) are not supported")
    if isinstance(value, dict):
        raise FamilyError(f"{where}: filtered parameters (a mapping) are not supported")
    if kind is bool:
        if not isinstance(value, bool):
            raise FamilyError(f"{where}: {value!r} is not true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FamilyError(f"{where}: {value!r} is not a number")
    return float(value)


def _base(reference: Any, where: str, mapping: Mapping[str, str]) -> str:
    """The lmlerp base a YAML model string names."""
    if not isinstance(reference, str):
        raise FamilyError(f"{where}: a model is a path string, got {reference!r}")
    if "+" in reference:
        raise FamilyError(f"{where}: LoRA model strings ('{reference}') are not supported")
    name = mapping.get(reference, reference)
    if name not in BASES:
        raise FamilyError(f"{where}: model '{reference}' is no lmlerp base; map it in the "
                          f"family's `bases` to one of {', '.join(BASES)}")  # fmt: skip
    return name


def _parameters(document: Mapping[str, Any], method: str) -> dict[str, Any]:
    """The shared parameters with mergekit's defaults; per-model defaults stay in `document`."""
    given = document.get("parameters") or {}
    if not isinstance(given, dict):
        raise FamilyError("parameters: a mapping of parameter names to values")
    shared = dict(SHARED[method])
    for key, value in given.items():
        if key not in shared and key not in PER_MODEL[method]:
            raise FamilyError(
                f"parameters.{key}: unknown parameter of {method} "
                f"(known: {', '.join(sorted({*shared, *PER_MODEL[method]}))})"
            )
        if key in shared:
            kind = bool if isinstance(SHARED[method][key], bool) else float
            shared[key] = _scalar(value, f"parameters.{key}", kind)
    missing = [k for k, v in shared.items() if v is None]
    if missing:
        raise FamilyError(f"parameters.{missing[0]} is required by {method}")
    return shared


def _models(document, method, mapping) -> dict[str, dict[str, float]]:  # fmt: skip
    """{base name: its per-model parameters} of every model but the base (order kept)."""
    base = document.get("base_model")
    base = None if base is None else _base(base, "base_model", mapping)
    global_values = document.get("parameters") or {}
    out: dict[str, dict[str, float]] = {}
    for i, model in enumerate(document.get("models") or []):
        here = f"models[{i}]"
        if (
            not isinstance(model, dict)
            or "model" not in model
            or set(model) - {"model", "parameters"}
        ):
            raise FamilyError(f"{here}: a model entry has 'model' and optional 'parameters'")
        name = _base(model["model"], f"{here}.model", mapping)
        if base is not None and method != "linear" and name == base:
            continue  # the base model listed among the models, as mergekit allows
        values: dict[str, float] = {}
        own = model.get("parameters") or {}
        for key in own:
            if key not in PER_MODEL[method]:
                raise FamilyError(
                    f"{here}.parameters.{key}: not a per-model parameter of "
                    f"{method} (per-model: {', '.join(PER_MODEL[method]) or 'none'})"
                )
        for key, default in PER_MODEL[method].items():
            value = own.get(key, global_values.get(key, default))
            if value is None:
                raise FamilyError(f"{here}.parameters.{key} is required by {method}")
            values[key] = _scalar(value, f"{here}.parameters.{key}", float)
        if name in out:
            raise FamilyError(f"{here}: base '{name}' appears twice")
        out[name] = values
    return out


def translate(document: Mapping[str, Any], entry: Mapping[str, Any], where: str) -> dict:
    """{"method", "params"} of a mergekit YAML (`families.point_merge`'s form).

    `entry` is the config family (its `bases` mapping, its `seed` for DARE); `where` its config
    key, prefixed to every error so that the culprit is found in the YAML.
    """
    try:
        return _translate(document, entry)
    except FamilyError as error:
        raise FamilyError(
            f"config key '{where}.yaml' ({entry.get('yaml', 'a mergekit YAML')}) at {error}"
        ) from None


def _translate(document: Mapping[str, Any], entry: Mapping[str, Any]) -> dict:
    """`translate` with errors located in the YAML only."""
    for key in document:
        if key in UNSUPPORTED:
            raise FamilyError(f"{key}: {UNSUPPORTED[key]} is not supported")
        if key not in TOP_LEVEL:
            raise FamilyError(f"{key}: unknown key (supported: {', '.join(sorted(TOP_LEVEL))})")
    method = document.get("merge_method")
    if method not in SHARED:
        raise FamilyError(f"merge_method: {method!r} is not supported (supported: "
                          f"{', '.join(SHARED)})")  # fmt: skip
    mapping = entry.get("bases") or {}
    shared = _parameters(document, method)
    models = _models(document, method, mapping)
    base = document.get("base_model")
    if method == "linear":
        if not models:
            raise FamilyError("models: linear needs at least one model")
        weights = {name: v["weight"] for name, v in models.items()}
        return {
            "method": "linear",
            "params": {"weights": weights, "normalize": shared["normalize"]},
        }
    if base is None:
        raise FamilyError(f"base_model: required by {method}")
    base = _base(base, "base_model", mapping)
    if method == "slerp":
        if len(models) != 1:
            raise FamilyError("models: slerp needs the base and exactly one other model")
        (other,) = models
        return {"method": "slerp", "params": {"from": base, "to": other, "t": shared["t"]}}
    if not models:
        raise FamilyError(f"models: {method} needs a model besides the base")
    for name, values in models.items():
        if not 0 < values["density"] <= 1:
            raise FamilyError(f"models: density {values['density']} of '{name}' is outside (0, 1]")
    params: dict[str, Any] = {
        "base": base,
        "weights": {name: v["weight"] for name, v in models.items()},
        "lambda": shared["lambda"],
        "normalize": shared["normalize"],
    }
    if method == "ties":
        params.update(densities={n: v["density"] for n, v in models.items()}, scope="tensor",
                      rescale="l1" if shared["rescale"] else None)  # fmt: skip
    elif method.startswith("dare"):
        if "seed" not in entry:
            raise FamilyError(f"merge_method: {method} draws random drop masks; set the "
                              "family's `seed`")  # fmt: skip
        params.update(
            drop_rates={n: 1 - v["density"] for n, v in models.items()},
            combination="ties" if method == "dare_ties" else "linear",
            seed=int(entry["seed"]),
            rescale="l1" if shared["rescale"] else None,
        )
    return {"method": "dare" if method.startswith("dare") else method, "params": params}


def substitute(document: Mapping[str, Any], parameter: str, value: float, where: str,
               entry: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The YAML with one parameter set to `value`: a sweep's point.

    `parameter` is a parameter name (set wherever the YAML sets it — globally and in every
    model — or globally if it sets it nowhere), or `<base>.<name>` for one model's parameter.
    """
    out = copy.deepcopy(dict(document))
    models = out.get("models") or []
    mapping = entry.get("bases") or {}
    if "." in parameter:
        base, name = parameter.split(".", 1)
        hits = [
            m
            for m in models
            if isinstance(m, dict) and mapping.get(m.get("model"), m.get("model")) == base
        ]
        if not hits:
            raise FamilyError(f"config key '{where}.sweep.parameter': no model of the YAML is "
                              f"base '{base}'")  # fmt: skip
        for model in hits:
            model["parameters"] = {**(model.get("parameters") or {}), name: value}
        return out
    found = False
    for model in models:
        if isinstance(model, dict) and parameter in (model.get("parameters") or {}):
            model["parameters"] = {**model["parameters"], parameter: value}
            found = True
    if parameter in (out.get("parameters") or {}) or not found:
        out["parameters"] = {**(out.get("parameters") or {}), parameter: value}
    return out
