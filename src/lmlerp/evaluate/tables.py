"""A family's tables with honest statistics: intervals over prompts, drop counts, paired trends.

`family_table` gives one row per point × prompt kind (each kind present, and "all" for the pooled
prompts) with every sample statistic of the point, its percentile bootstrap interval over prompts
(`evaluate.statistics`), what was left out of it, and the point's model metrics (test NLLs, Fig 4's
word probabilities), which depend on the weights only and so are the same for every kind.
`family_trends` gives the trends of a 1-D path — the perplexity barrier on [0, 1] and the Spearman
ρ of the positive score against α — from a paired bootstrap, as a JSON-able dict.

The statistics keep the definitions of `evaluate.chunk.point_metrics`: means over the samples where
a score is not NaN (`score.perplexity.mean_perplexity` for perplexity: unscored and empty
continuations left out, no outlier dropped) and distinct-n per prompt averaged over the prompts
that have n-grams (`score.text.distinct_by_prompt`). Every point × kind uses the same seed: the
prompts are the same at every point, so their intervals come from the same draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from lmlerp.evaluate.statistics import (
    ColumnStatistic,
    PromptRatio,
    Statistic,
    bootstrap_draws,
    check_settings,
    distinct,
    draw_counts,
    path_trends,
    percentile_interval,
    ratio,
    replicates,
    sample_mean,
)

ALL = "all"  # the kind of the pooled rows
NGRAMS = (1, 2, 3)
STATISTICS: dict[str, Statistic] = {
    "positive_score": sample_mean("positive_score"),
    "grammar": sample_mean("grammar"),
    "perplexity": sample_mean("perplexity"),  # = mean_perplexity, without importing torch
    **{f"distinct_{n}": distinct(n) for n in NGRAMS},
}
SAMPLE_COLUMNS = ("family", "point", "alpha", "beta", "prompt_id", "kind", "continuation")
SAMPLE_COLUMNS += ("positive_score", "grammar", "perplexity")
INTERVAL_KEYS = ("resamples", "confidence", "seed")
# The trends each 1-D family reports (metric → results of `path_trends`); g3 is a plane.
FAMILY_TRENDS: dict[str, dict[str, tuple[str, ...]]] = {
    "g1": {"perplexity": ("barrier", "relative_barrier"), "positive_score": ("spearman",)},
    "decorrelated": {"perplexity": ("barrier", "relative_barrier")},
    "g2": {"positive_score": ("spearman",)},
    "dexperts": {"positive_score": ("spearman",)},
}
TREND_KINDS = (ALL, "neutral")


def family_table(
    samples: pd.DataFrame,
    metrics: pd.DataFrame,
    *,
    intervals: Mapping[str, Any],
    perplexity_fn: Callable[[np.ndarray], float] | None = None,
) -> pd.DataFrame:
    """One row per point × kind of one family's samples, sorted by alpha, beta, kind.

    `samples` needs the columns `SAMPLE_COLUMNS`, `kind` among them (the prompt's kind, as in
    the prompts table); `metrics` one row per point.

    Columns: family, point, alpha, beta, kind; the drop counts n_samples, n_prompts, n_empty
    (continuation ""), n_perplexity (samples whose perplexity is not NaN: the mean's denominator),
    n_no_ngrams_1..3 (prompts left out of distinct-n: no n-gram of that order); each statistic of
    `STATISTICS` with its interval `<name>_lo`, `<name>_hi`; perplexity_median (NaN skipped, no
    interval); then the columns of `metrics` (one row per point) that the table does not compute.

    Args:
        intervals: resamples, confidence and seed of the bootstrap over prompts.
        perplexity_fn: the per-point aggregate of perplexities, if not `mean_perplexity`'s
            definition (the default, computed by matrix products); a function is recomputed on
            every replicate's values, which is slower.
    """
    _check_columns(samples, SAMPLE_COLUMNS, "samples")
    family = _one_family(samples)
    resamples, confidence, seed = _settings(intervals)
    _check_metrics(metrics, family, set(samples.point))
    statistics = dict(STATISTICS)
    if perplexity_fn is not None:
        statistics["perplexity"] = ColumnStatistic("perplexity", perplexity_fn)
    prompt_tables = dict(iter(_prompt_table(samples, statistics).groupby(level="point")))
    draws: dict[int, np.ndarray] = {}
    rows = []
    for point, frame in samples.groupby("point", sort=False):
        table = prompt_tables[point].droplevel("point")
        coordinates = {"family": family, "point": point, **frame[["alpha", "beta"]].iloc[0]}
        for kind in [*sorted(frame.kind.unique()), ALL]:
            chosen = frame if kind == ALL else frame[frame.kind == kind]
            part = table if kind == ALL else table[table.kind == kind]
            if len(part) not in draws:
                draws[len(part)] = bootstrap_draws(len(part), resamples, seed)
            row = {**coordinates, "kind": kind, **_drop_counts(chosen, part)}
            for name, statistic in statistics.items():
                estimate, lo, hi = _interval(
                    statistic, name, chosen, part, draws[len(part)], confidence
                )
                row.update({name: estimate, f"{name}_lo": lo, f"{name}_hi": hi})
            row["perplexity_median"] = float(chosen.perplexity.median())
            rows.append(row)
    table = pd.DataFrame(rows)
    table = table.sort_values(["alpha", "beta", "kind"], kind="stable", ignore_index=True)
    model = metrics.drop(columns=[c for c in metrics.columns if c in table and c != "point"])
    return table.merge(model, on="point", how="left", validate="many_to_one")


def _interval(statistic, name, chosen, part, draws, confidence) -> tuple[float, float, float]:
    """(T̂, lo, hi) of one statistic of one point × kind; ratios from the prompt table."""
    if isinstance(statistic, PromptRatio):
        a, b = part[f"{name}_a"].to_numpy(), part[f"{name}_b"].to_numpy()
        estimate = float(ratio(a, b, np.ones((1, len(a))))[0])
        values = ratio(a, b, draw_counts(draws))
    else:
        estimate = float(statistic(chosen))
        values = replicates(chosen, statistic, part.index.to_numpy(), draws)
    return estimate, *percentile_interval(estimate, values, confidence)


def _prompt_table(samples: pd.DataFrame, statistics: Mapping[str, Statistic]) -> pd.DataFrame:
    """Per (point, prompt_id), sorted: the prompt's kind and a, b of every `PromptRatio`."""
    kinds = samples.groupby("prompt_id").kind.nunique()
    if (kinds > 1).any():
        raise ValueError(f"prompt {kinds.index[kinds > 1][0]!r} has several kinds")
    if ALL in set(samples.kind):
        raise ValueError(f"{ALL!r} names the pooled rows and cannot be a prompt kind")
    parts = [
        statistic.parts(samples, ["point", "prompt_id"]).add_prefix(f"{name}_")
        for name, statistic in statistics.items()
        if isinstance(statistic, PromptRatio)
    ]
    return pd.concat([samples.groupby(["point", "prompt_id"]).kind.first(), *parts], axis=1)


def _drop_counts(chosen: pd.DataFrame, part: pd.DataFrame) -> dict[str, int]:
    """How many samples and prompts a point × kind has, and how many each statistic left out."""
    return {
        "n_samples": len(chosen),
        "n_prompts": len(part),
        "n_empty": int((chosen.continuation.fillna("") == "").sum()),
        "n_perplexity": int(chosen.perplexity.notna().sum()),
        **{f"n_no_ngrams_{n}": int((part[f"distinct_{n}_b"] == 0).sum()) for n in NGRAMS},
    }


def _check_metrics(metrics: pd.DataFrame, family: str, points: set) -> None:
    """ValueError unless `metrics` holds one row for each of `points`, of this family."""
    _check_columns(metrics, ("point",), "metrics")
    if "family" in metrics and set(metrics.family) - {family}:
        raise ValueError(f"metrics hold families {sorted(set(metrics.family))}, not {family!r}")
    twice = metrics.point[metrics.point.duplicated()]
    if not twice.empty:
        raise ValueError(f"metrics hold point {twice.iloc[0]!r} more than once")
    missing = sorted(points - set(metrics.point))
    if missing:
        raise ValueError(f"metrics lack points {missing[:5]} of the samples")


def family_trends(
    samples: pd.DataFrame,
    family: str,
    *,
    intervals: Mapping[str, Any],
    trends: Mapping[str, tuple[str, ...]] | None = None,
) -> dict:
    """The trends of a 1-D family along α, pooled over kinds ("all") and on neutral prompts.

    `trends` (default `FAMILY_TRENDS[family]`) maps a metric of `STATISTICS` to the results of
    `statistics.path_trends` to report: g1 and decorrelated the perplexity barrier on [0, 1]
    (absolute and relative), g1, g2 and DExperts the Spearman ρ of the positive score. Each
    metric also carries its per-point estimate and interval. A kind without samples is left out.
    NaN becomes None (JSON has no NaN).
    """
    wanted = FAMILY_TRENDS.get(family) if trends is None else trends
    if wanted is None:
        raise ValueError(f"family {family!r} has no trends; families with trends: "
                         f"{sorted(FAMILY_TRENDS)}")  # fmt: skip
    unknown = sorted(set(wanted) - set(STATISTICS))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {sorted(STATISTICS)}")
    _check_columns(samples, SAMPLE_COLUMNS, "samples")
    if _one_family(samples) != family:
        raise ValueError(f"samples are of family {_one_family(samples)!r}, not {family!r}")
    if samples.beta.notna().any():
        raise ValueError(f"family {family!r} has a beta coordinate: trends need a 1-D path")
    resamples, confidence, seed = _settings(intervals)
    alpha = samples.groupby("point").alpha.first().sort_values(kind="stable")
    out = {"family": family, "coordinate": "alpha", "unit": "prompt", "resamples": resamples,
           "confidence": confidence, "seed": seed, "kinds": {}}  # fmt: skip
    for kind in TREND_KINDS:
        chosen = samples if kind == ALL else samples[samples.kind == kind]
        if chosen.empty:
            continue
        frames = dict(iter(chosen.groupby("point")))
        by_point = {point: frames[point] for point in alpha.index if point in frames}
        entry: dict[str, Any] = {"points": list(by_point), "alpha": alpha[list(by_point)].tolist()}
        for metric, names in wanted.items():
            result = path_trends(
                by_point, entry["alpha"], STATISTICS[metric],
                resamples=resamples, confidence=confidence, seed=seed,
            )  # fmt: skip
            entry["n_prompts"] = result["n_prompts"]
            entry[metric] = {k: result[k] for k in ("estimate", "lo", "hi", *names)}
        out["kinds"][kind] = entry
    return _jsonable(out)


def _jsonable(value: Any) -> Any:
    """Plain Python values for json.dump: numpy scalars unwrapped, NaN as None."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _settings(intervals: Mapping[str, Any]) -> tuple[int, float, int]:
    if sorted(intervals) != sorted(INTERVAL_KEYS):
        raise ValueError(
            f"intervals must have exactly {list(INTERVAL_KEYS)}, got {list(intervals)}"
        )
    check_settings(intervals["resamples"], intervals["confidence"])
    return int(intervals["resamples"]), float(intervals["confidence"]), int(intervals["seed"])


def _check_columns(frame: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lack columns {missing}")


def _one_family(samples: pd.DataFrame) -> str:
    families = samples.family.unique()
    if len(families) != 1:
        raise ValueError(f"samples must hold one family, got {sorted(map(str, families))}")
    return str(families[0])
