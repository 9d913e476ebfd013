"""The jobs of the evaluation stage: one chunk of path points, then one table per family.

Torch and transformers (≈6 s to import) are imported only inside the tasks that need them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lmlerp import jobs
from lmlerp.io import atomic

PathLike = str | os.PathLike


def evaluate(
    *,
    inputs: Mapping[str, PathLike],
    samples: PathLike,
    points: PathLike,
    recipes: PathLike,
    family: str,
    grid: Sequence[Mapping[str, Any]],
    bases: Sequence[str],
    sampling: Mapping[str, Any],
    settings: Mapping[str, Any],
    scorers: Mapping[str, Any],
    filter_p: float | None,
    device: str,
    dtype: str,
    threads: int,
) -> None:
    """Rebuild, sample and score every point of `grid` (one chunk of `family`).

    `inputs` holds the bases named in `bases`, theta0 (the tokenizer), prompts, movie and the
    scorers' model directories. Every input is read before anything is written; the recipes
    (and, with `materialize: weights`, the weights) of the chunk's points go to `recipes`.
    """
    from lmlerp.evaluate import chunk
    from lmlerp.io import checkpoints

    device = jobs.setup(threads, device)  # this job's own GPU when several run at once
    base_dirs = {name: str(inputs[name]) for name in bases}
    models = {name: checkpoints.load(path).to(device) for name, path in base_dirs.items()}
    tokenizer, judges, data = chunk.load_inputs(inputs, settings, scorers, device, dtype)
    weights = models if settings["materialize"] == "weights" else None
    chunk.write_recipes(family, grid, base_dirs, Path(recipes), weights)
    sample_table, point_table = chunk.evaluate_chunk(
        family, grid, models, tokenizer, judges, data, sampling, settings, filter_p,
        device=str(device), dtype=dtype,
    )  # fmt: skip
    atomic.write_parquet(samples, sample_table)
    atomic.write_parquet(points, point_table)


def aggregate(
    *,
    points: Sequence[PathLike],
    samples: Sequence[PathLike],
    table: PathLike,
    trends: PathLike,
    family: str,
    statistics: Mapping[str, Any],
) -> None:
    """One tidy table per experiment — a row per point and prompt kind (and pooled, kind "all")
    with bootstrap intervals and drop counts — and the family's path trends (barrier,
    monotonicity) with theirs (`lmlerp.evaluate.tables`)."""
    from lmlerp.evaluate import tables

    metrics = pd.concat(map(atomic.read_parquet, points), ignore_index=True)
    sample_table = pd.concat(map(atomic.read_parquet, samples), ignore_index=True)
    atomic.write_parquet(table, tables.family_table(sample_table, metrics, intervals=statistics))
    has_trends = family in tables.FAMILY_TRENDS  # a 1-D path (g3 is a plane)
    trend = tables.family_trends(sample_table, family, intervals=statistics) if has_trends else {}
    atomic.write_json(trends, trend)
