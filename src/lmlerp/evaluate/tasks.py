"""The jobs of the evaluation stage: one chunk of path points, then one table per family.

Torch and transformers (≈6 s to import) are imported only inside the tasks that need them.
"""

from __future__ import annotations

import os
import sys
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
    cache: PathLike,
    code: str,
    merge: Mapping[str, Any] | None = None,
) -> None:
    """Rebuild, sample and score every point of `grid` (one chunk of `family`) not in the cache.

    `inputs` holds the bases named in `bases`, theta0 (the tokenizer), prompts, movie and the
    scorers' model directories. Each point is looked up in the point cache under `cache`
    (`evaluate.cache`, its key made with `code`, the evaluate script's fingerprint); only the
    missing ones are evaluated — the bases and judges are loaded only then — and each is stored
    as soon as it is done, so a killed job keeps its finished points. The outputs are then
    assembled from the cache. The recipes (and, with `materialize: weights`, the weights, which
    need the bases) of the chunk's points go to `recipes`. `merge` is the spec of a merge-method
    family (`space.families.resolve`: task arithmetic, TIES, DARE, SLERP, a mergekit YAML), None
    for the built-in families and DExperts.
    """
    from lmlerp.evaluate import cache as point_cache
    from lmlerp.evaluate import chunk
    from lmlerp.space.recipes import weights_sha256

    base_dirs = {name: str(inputs[name]) for name in bases}
    sha256 = {name: weights_sha256(path) for name, path in base_dirs.items()}
    data = chunk.load_data(inputs, settings)
    shared = point_cache.shared_parts(
        sampling=sampling, settings=settings, scorer_settings=scorers,
        scorer_dirs={s: inputs[s] for s in SCORER_INPUTS if s in inputs},
        tokenizer_dir=inputs["theta0"], prompts=data.prompts,
        test_sentences=[data.positive_test, data.negative_test], device=device, dtype=dtype,
        code=code,
    )  # fmt: skip
    parts = {
        p["label"]: {**shared, "point": point_cache.point_parts(family, p, sha256, filter_p, merge)}
        for p in grid
    }
    keys = {label: point_cache.point_key(part) for label, part in parts.items()}
    store = point_cache.PointCache(cache)
    results = {label: hit for label, key in keys.items() if (hit := store.get(key)) is not None}
    missing = [p for p in grid if p["label"] not in results]
    print(
        f"evaluate {family}: {len(grid)} points, {len(results)} from the cache, "
        f"{len(missing)} to evaluate",
        file=sys.stderr,
    )
    weights = settings["materialize"] == "weights"
    claimed, models = _load_bases(base_dirs, threads, device) if missing or weights else ("", {})
    chunk.write_recipes(
        family, grid, base_dirs, Path(recipes), models if weights else None, sha256, merge
    )
    if missing:
        tokenizer, judges = chunk.load_judges(inputs, settings, scorers, claimed, dtype)
        done = chunk.evaluate_points(
            family, missing, models, tokenizer, judges, data, sampling, settings, filter_p,
            device=claimed, dtype=dtype, spec=merge,
        )  # fmt: skip
        for point, point_samples, row in done:
            store.put(keys[point["label"]], point_samples, row, parts[point["label"]])
            results[point["label"]] = store.get(keys[point["label"]])
    sample_table, point_table = chunk.assemble(family, grid, results)
    atomic.write_parquet(samples, sample_table)
    atomic.write_parquet(points, point_table)


SCORER_INPUTS = ("sentiment", "grammar", "judge_lm")  # the inputs that name a scorer's model


def _load_bases(
    base_dirs: Mapping[str, str], threads: int, device: str
) -> tuple[str, dict[str, Any]]:
    """(this job's device, the bases on it): `jobs.setup` claims its own GPU when several run."""
    from lmlerp.io import checkpoints

    claimed = str(jobs.setup(threads, device))
    return claimed, {name: checkpoints.load(path).to(claimed) for name, path in base_dirs.items()}


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
