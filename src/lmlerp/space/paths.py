"""Paths through weight space.

Every point is an affine combination of named checkpoints, θ = Σ_r c_r·θ_r. A path family is
nothing but the function that gives the coefficients c_r; `combine` does the tensor arithmetic for
all of them.
Rofin et al. 2022, https://arxiv.org/abs/2211.12092, Section 3.1.

This module is pure Python (no torch), so that the Snakefile can build grids at parse time
without paying for a torch import; the tensor arithmetic lives in `merge`, recipes in `recipes`.
"""

from __future__ import annotations

import dataclasses
import itertools
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lmlerp.space import labels

# --- path families ---------------------------------------------------------------------------


def g1(alpha: float) -> dict[str, float]:
    """Line between the fine-tuned models: g1(α) = α·θ+ + (1 − α)·θ−  (Eq. 1)."""
    return {"theta_pos": alpha, "theta_neg": 1 - alpha}


def g2(alpha: float) -> dict[str, float]:
    """Move the pretrained model along θ+ − θ−: g2(α') = θ0 + α'·(θ+ − θ−)  (Eq. 3).

    α' = 2α − 1 relates it to g1's α (both move along the same direction θ+ − θ−).
    """
    return {"theta0": 1.0, "theta_pos": alpha, "theta_neg": -alpha}


def g3(alpha: float, beta: float) -> dict[str, float]:
    """Plane spanned by both task vectors: g3(α, β) = θ0 + α·(θ+ − θ0) + β·(θ− − θ0)  (Eq. 4).

    α + β = 1 gives g1 and α + β = 0 gives g2, which the tests check on real tensors. The paper's
    grid is {i/2.5 : i = −10..10}², 21 values per axis (the text says 20; the formula gives 21).
    """
    return {"theta0": 1 - alpha - beta, "theta_pos": alpha, "theta_neg": beta}


def decorrelated(alpha: float) -> dict[str, float]:
    """g1 between two independently pretrained LMs: θ(α) = α·θC4 + (1 − α)·θ0.

    The paper's pair is DistilGPT-2 and GPT-C4: unlike fine-tuned models, the model breaks in
    between (no linear connectivity without a shared pretraining).
    """
    return {"theta_c4": alpha, "theta0": 1 - alpha}


# Family name → (coefficient function, its coordinate names in argument order). A coordinate's
# first letter is its prefix in point labels ("alpha" → "a-0.4").
FAMILIES: dict[str, tuple[Callable[..., dict[str, float]], tuple[str, ...]]] = {
    "g1": (g1, ("alpha",)),
    "g2": (g2, ("alpha",)),
    "g3": (g3, ("alpha", "beta")),
    "decorrelated": (decorrelated, ("alpha",)),
}


def family(name: str) -> tuple[Callable[..., dict[str, float]], tuple[str, ...]]:
    """The registry entry of a family; ValueError listing the valid names otherwise."""
    if name not in FAMILIES:
        raise ValueError(f"unknown path family '{name}'; choose one of {sorted(FAMILIES)}")
    return FAMILIES[name]


def coefficients(name: str, coords: Mapping[str, float]) -> dict[str, float]:
    """The coefficients c_r of one point of a family, as floats, keyed by base name."""
    function, names = family(name)
    if set(coords) != set(names):
        raise ValueError(
            f"path family '{name}' takes coordinates {list(names)}, got {list(coords)}"
        )
    return {base: float(c) for base, c in function(*(coords[n] for n in names)).items()}


# --- grids -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Point:
    """One point of a path family: its coordinates, clean label and base coefficients."""

    family: str
    coords: dict[str, float] = dataclasses.field(hash=False)
    label: str
    coefficients: dict[str, float] = dataclasses.field(hash=False)


def label(name: str, coords: Mapping[str, float]) -> str:
    """Directory-safe label of a point, e.g. 'a-0.4_b1.2' for g3 or 'a0.5' for g1."""
    _, names = family(name)
    return "_".join(f"{n[0]}{labels.number(coords[n])}" for n in names)


def points(name: str, coordinates: Mapping[str, Sequence[float]]) -> list[Point]:
    """The grid of a family from explicit coordinate lists (cartesian product, config order).

    Built from explicit coordinates, never by stepping along directions (DESIGN §5: a popular
    landscape library's alternating steps misalign rows). Raises ValueError naming the family on
    missing or extra coordinates, an empty grid, or two points with the same label.
    """
    _, names = family(name)
    if set(coordinates) != set(names):
        raise ValueError(
            f"path family '{name}' takes coordinates {list(names)}, got {list(coordinates)}"
        )
    grid: list[Point] = []
    seen: dict[str, dict[str, float]] = {}
    for values in itertools.product(*(coordinates[n] for n in names)):
        coords = {n: float(v) for n, v in zip(names, values, strict=True)}
        text = label(name, coords)
        if text in seen:
            raise ValueError(
                f"path family '{name}': coordinates {seen[text]} and {coords} share the label "
                f"'{text}' (equal to 12 significant digits)"
            )
        seen[text] = coords
        grid.append(Point(name, coords, text, coefficients(name, coords)))
    if not grid:
        raise ValueError(f"path family '{name}': empty grid (coordinates {dict(coordinates)})")
    return grid


# --- evaluation jobs -------------------------------------------------------------------------

DEXPERTS = "dexperts"  # not a weight-space path, but its α grid is labelled like g1's

# The checkpoints each family's evaluation job loads (DExperts ensembles θ0, θ+ and θ−).
FAMILY_BASES = {
    "g1": ("theta_pos", "theta_neg"),
    "g2": ("theta0", "theta_pos", "theta_neg"),
    "g3": ("theta0", "theta_pos", "theta_neg"),
    "decorrelated": ("theta0", "theta_c4"),
    DEXPERTS: ("theta0", "theta_pos", "theta_neg"),
}


def coordinates(point: Mapping[str, Any]) -> dict[str, float]:
    """A point's coordinates (alpha[, beta]) without its label."""
    return {k: v for k, v in point.items() if k != "label"}


def family_points(family: str, coordinates: Mapping[str, Sequence[float]]) -> list[dict]:
    """Points of a family as plain dicts {label, alpha[, beta]} in config order.

    DExperts is not a weight-space path, but its α grid is labelled the same way.
    """
    if family == DEXPERTS:
        return [{"label": label("g1", {"alpha": a}), "alpha": a} for a in coordinates["alpha"]]
    return [{"label": p.label, **p.coords} for p in points(family, coordinates)]


def chunks(grid: Sequence[Mapping[str, Any]], per_job: int) -> dict[str, list[dict]]:
    """Split points into ⌈n / per_job⌉ chunks by a stable hash of their label.

    Hashing (not position) means adding one coordinate moves no other point, so only the chunk
    that receives it re-runs — unless the chunk count itself grows. Either way only the new
    points are evaluated: the others come from the point cache (`lmlerp.evaluate.cache`).
    """
    n_chunks = max(1, -(-len(grid) // per_job))
    out: dict[str, list[dict]] = {f"c{k}": [] for k in range(n_chunks)}
    for point in grid:
        out[f"c{zlib.crc32(point['label'].encode()) % n_chunks}"].append(dict(point))
    return {name: members for name, members in out.items() if members}
