"""Merge-method path families: config entries → grids of points → (method, params) per point.

A family under config `paths.merges.<name>` sweeps the coordinates of one merge method over
explicit grids, like `paths.g1` sweeps α. This module is pure Python (no torch): the Snakefile
builds the grids at parse time and the config checks refuse bad entries before any job; the
tensor arithmetic lives in `methods`.

A point's merge is a plain dict {"method": m, "params": {...}} that names its bases and every
number it uses, so that it can be stored in a recipe, hashed for the point cache and rebuilt in
memory by `methods.merge`. The methods (papers and equations in `methods`):

    linear           θ = Σ_i w_i·θ_i (/ Σ_i w_i with normalize)              mergekit YAML only
    task_arithmetic  θ = θ0 + λ·Σ_i w_i·τ_i,  τ_i = θ_i − θ0               coordinate λ
    ties             trim to density k, elect signs, disjoint mean; θ0 + λ·τ_m   k, λ
    dare             drop rate p and rescale, then linear or TIES combination    p, λ
    slerp            per-tensor spherical interpolation between two bases        t

`linear` and `task_arithmetic` are affine: `coefficients` expands them to the c_r of
θ = Σ_r c_r·θ_r, so that they are rebuilt by the fused `merge.Interpolator` and share point-cache
entries with g1/g2/g3 (task arithmetic with w = {θ+: 1, θ−: −1} *is* g2).

In the tables a point's first coordinate is spelled `alpha` and its second `beta` (the columns
every family shares); recipes and labels carry the coordinates' own names.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lmlerp.space import labels, paths

BASES = ("theta0", "theta_pos", "theta_neg", "theta_c4")  # what the workflow can hand a merge
# The config keys of each method's family (besides `method`), and its swept coordinates.
KEYS: dict[str, tuple[str, ...]] = {
    "task_arithmetic": ("base", "models", "lambda"),
    "ties": ("base", "models", "density", "lambda", "trim"),
    "dare": ("base", "models", "drop_rate", "lambda", "combination", "seed"),
    "slerp": ("between", "t"),
    "mergekit": ("yaml",),  # optional: bases, sweep, seed
}
OPTIONAL = {"mergekit": ("bases", "sweep", "seed")}
COORDINATES = {
    "task_arithmetic": ("lambda",),
    "ties": ("density", "lambda"),
    "dare": ("drop_rate", "lambda"),
    "slerp": ("t",),
}
# A coordinate's spelling in point labels: the paper's symbol (k for TIES's density is "d").
PREFIX = {"lambda": "l", "density": "d", "drop_rate": "p", "t": "t"}
TABLE_COLUMNS = ("alpha", "beta")  # a point's coordinates, in order, in the shared tables
AFFINE = ("linear", "task_arithmetic")
SINGLE = "merge"  # the label of a family's only point when nothing is swept


class FamilyError(ValueError):
    """A merge family that cannot be built; the message names the config key."""


def prefix(coordinate: str) -> str:
    """Label prefix of a coordinate: its symbol, or its name for a swept mergekit parameter."""
    return PREFIX.get(coordinate, coordinate.replace(".", "-"))


def label(coords: Mapping[str, float]) -> str:
    """Directory-safe label of a point, e.g. 'd0.2_l1' for TIES, 'merge' with no coordinate."""
    return "_".join(f"{prefix(n)}{labels.number(v)}" for n, v in coords.items()) or SINGLE


# --- families from config ----------------------------------------------------------------------


def resolve(
    name: str,
    entry: Mapping[str, Any],
    read_yaml: Callable[[str], Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The family spec of config entry `paths.merges.<name>`: JSON-able, all a job needs.

    {"family", "entry", "coordinates", "values", "yaml"}: `yaml` is the parsed mergekit YAML
    (read with `read_yaml`, a path → mapping function) or None. Every point is translated once
    here, so that a bad entry fails at parse time naming its key (FamilyError).
    """
    where = f"paths.merges.{name}"
    method = entry.get("method")
    if method not in KEYS:
        raise FamilyError(f"config key '{where}.method': unknown merge method {method!r}; "
                          f"choose one of {sorted(KEYS)}")  # fmt: skip
    allowed = {"method", *KEYS[method], *OPTIONAL.get(method, ())}
    for key in KEYS[method]:
        if key not in entry:
            raise FamilyError(f"config key '{where}.{key}' is required for method {method}")
    for key in entry:
        if key not in allowed:
            raise FamilyError(f"config key '{where}.{key}' means nothing for method {method} "
                              f"(its keys: {', '.join(sorted(allowed))})")  # fmt: skip
    spec: dict[str, Any] = {"family": name, "entry": dict(entry), "yaml": None}
    if method == "mergekit":
        if read_yaml is None:
            raise FamilyError(f"config key '{where}.yaml': no reader for mergekit YAML files")
        try:
            spec["yaml"] = dict(read_yaml(entry["yaml"]))
        except FamilyError as error:
            raise FamilyError(f"config key '{where}.yaml': {error}") from None
        sweep = entry.get("sweep")
        spec["coordinates"] = [sweep["parameter"]] if sweep else []
        spec["values"] = {sweep["parameter"]: list(sweep["values"])} if sweep else {}
    else:
        _check_bases(where, method, entry)
        spec["coordinates"] = list(COORDINATES[method])
        spec["values"] = {c: list(entry[c]) for c in COORDINATES[method]}
    for point in family_points(spec):
        point_merge(spec, point)
    return spec


def _check_bases(where: str, method: str, entry: Mapping[str, Any]) -> None:
    """Known base names; the base is no model of its own sum; SLERP joins two different bases."""
    named = list(entry["between"]) if method == "slerp" else [entry["base"], *entry["models"]]
    unknown = [b for b in named if b not in BASES]
    if unknown:
        raise FamilyError(f"config key '{where}': unknown base {unknown[0]!r}; "
                          f"choose from {', '.join(BASES)}")  # fmt: skip
    if method == "slerp":
        if len(named) != 2 or named[0] == named[1]:
            raise FamilyError(f"config key '{where}.between': two different bases, t=0 then t=1")
    elif entry["base"] in entry["models"] or not entry["models"]:
        raise FamilyError(f"config key '{where}.models': one or more task vectors θ_i − θ0 of "
                          f"bases other than base {entry['base']!r}")  # fmt: skip


def family_points(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The family's grid as plain dicts {label, alpha[, beta]} (cartesian product, config order).

    Raises FamilyError on two points with the same label (equal to 12 significant digits).
    """
    names = spec["coordinates"]
    grid, seen = [], set()
    for values in itertools.product(*(spec["values"][n] for n in names)):
        coords = {n: float(v) for n, v in zip(names, values, strict=True)}
        text = label(coords)
        if text in seen:
            raise FamilyError(f"config key 'paths.merges.{spec['family']}': two points share the "
                              f"label '{text}' (equal to 12 significant digits)")  # fmt: skip
        seen.add(text)
        grid.append({"label": text, **dict(zip(TABLE_COLUMNS, coords.values(), strict=False))})
    return grid


def point_coordinates(spec: Mapping[str, Any], point: Mapping[str, Any]) -> dict[str, float]:
    """A grid point's coordinates under their own names ({"density": 0.2, "lambda": 1.0})."""
    return {
        n: float(point[col]) for n, col in zip(spec["coordinates"], TABLE_COLUMNS, strict=False)
    }


def point_merge(spec: Mapping[str, Any], point: Mapping[str, Any]) -> dict[str, Any]:
    """{"method", "params"} of one grid point: every base and number the merge uses."""
    coords = point_coordinates(spec, point)
    entry = spec["entry"]
    method = entry["method"]
    if method == "mergekit":
        from lmlerp.space import mergekit_yaml

        where = f"paths.merges.{spec['family']}"
        document = spec["yaml"]
        if coords:
            ((parameter, value),) = coords.items()
            document = mergekit_yaml.substitute(document, parameter, value, where, entry)
        return mergekit_yaml.translate(document, entry, where)
    if method == "slerp":
        first, second = entry["between"]
        return {"method": "slerp", "params": {"from": first, "to": second, "t": coords["t"]}}
    params: dict[str, Any] = {
        "base": entry["base"],
        "weights": {k: float(v) for k, v in entry["models"].items()},
        "lambda": coords["lambda"],
    }
    if method == "ties":
        params.update(densities={k: coords["density"] for k in entry["models"]},
                      scope=entry["trim"], normalize=True, rescale=None)  # fmt: skip
    elif method == "dare":
        ties = entry["combination"] == "ties"
        params.update(drop_rates={k: coords["drop_rate"] for k in entry["models"]},
                      combination=entry["combination"], seed=int(entry["seed"]),
                      rescale="inverse", normalize=ties)  # fmt: skip
    else:
        params["normalize"] = False
    return {"method": method, "params": params}


# --- what a merge uses -------------------------------------------------------------------------


def point_weights(
    family: str, point: Mapping[str, Any], spec: Mapping[str, Any] | None = None
) -> tuple[dict[str, float] | None, dict[str, Any] | None]:
    """(coefficients, merge) of one weight-space point: a built-in family's point or an affine
    merge (task arithmetic) gives its coefficients Σ_r c_r·θ_r, a TIES, DARE or SLERP point of
    the merge family `spec` gives None and its {"method", "params"}."""
    if spec is None:
        return paths.coefficients(family, paths.coordinates(point)), None
    merge = point_merge(spec, point)
    return coefficients(merge), merge


def bases_of(merge: Mapping[str, Any]) -> list[str]:
    """The bases a merge reads, the base model (which gives class, config, tokenizer) first."""
    method, params = merge["method"], merge["params"]
    if method == "slerp":
        return [params["from"], params["to"]]
    if method == "linear":
        return list(params["weights"])
    return [params["base"], *params["weights"]]


def coefficients(merge: Mapping[str, Any]) -> dict[str, float] | None:
    """The c_r of θ = Σ_r c_r·θ_r for an affine merge, None for TIES, DARE and SLERP.

    linear: c_i = w_i (/ Σ_j w_j with normalize). task_arithmetic: θ0 + λ·Σ_i w_i·(θ_i − θ0)
    (Ilharco et al. 2023, Eq. 1 with one scale λ) gives c_0 = 1 − s·Σ_i w_i and c_i = s·w_i
    with s = λ (/ Σ_i w_i with normalize, as mergekit; a sum under 1e-8 divides by 1).
    """
    method, params = merge["method"], merge["params"]
    if method not in AFFINE:
        return None
    weights = {k: float(v) for k, v in params["weights"].items()}
    total = math.fsum(weights.values())
    if method == "linear":
        if params["normalize"]:
            if total == 0:
                raise FamilyError("a normalised linear merge with weights summing to 0")
            return {k: w / total for k, w in weights.items()}
        return weights
    scale = float(params["lambda"])
    if params["normalize"] and abs(total) >= 1e-8:
        scale /= total
    return {params["base"]: 1 - scale * total, **{k: scale * w for k, w in weights.items()}}


def family_bases(spec: Mapping[str, Any]) -> list[str]:
    """Every base any point of the family reads, in first-use order."""
    names: dict[str, None] = {}
    for point in family_points(spec):
        names.update(dict.fromkeys(bases_of(point_merge(spec, point))))
    return list(names)


def check_entries(merges: Mapping[str, Mapping[str, Any]], builtin: Sequence[str],
                  read_yaml: Callable[[str], Mapping[str, Any]]) -> None:  # fmt: skip
    """Every entry of config `paths.merges` resolves; no name shadows a built-in family."""
    for name, entry in merges.items():
        if name in builtin:
            raise FamilyError(f"config key 'paths.merges.{name}': the name of a built-in family")
        resolve(name, entry, read_yaml)
