"""Honest uncertainty for the evaluation's metrics: a bootstrap over prompts, paired along a path.

The unit of replication is the prompt. The samples of one prompt share their context and model,
so they are correlated; resampling samples would understate the uncertainty. A replicate b draws
P prompt ids with replacement from the P prompts of a frame and keeps every sample of each drawn
prompt. A prompt drawn twice counts twice: in a resampled frame each draw is relabelled with its
position 0..P-1 as `prompt_id`, so statistics that group by prompt (distinct-n averaged over
prompts, Li et al. 2016) see two prompts. The interval is the percentile interval of R replicates
(Efron & Tibshirani 1993, §13.3), with T̂ the statistic on the original frame:

    T̂,  [q_{(1-c)/2}, q_{(1+c)/2}] of {T(b_r)}_{r=1..R},  b_r ~ seeded numpy Generator(seed)

Along a path every point is evaluated on the same prompts, so one draw b_r serves every point (a
paired bootstrap): a quantity of the whole path — a barrier, a rank correlation — is computed on
each replicate's path, and its interval reflects the shared prompts rather than summing the
points' independent noises.

Three kinds of statistic, fastest first (all are also plain `statistic(frame) -> float`):
- `PromptRatio`: T = Σ_p a_p / Σ_p b_p over prompts p — the mean of a column over its non-NaN
  samples (`sample_mean`; `score.perplexity.mean_perplexity` is exactly this) and a per-prompt value
  averaged over the prompts where it is defined (`prompt_mean`, `distinct`). With the draw counts
  w_rp, T(b_r) = Σ_p w_rp·a_p / Σ_p w_rp·b_p: one matrix product for all replicates.
- `ColumnStatistic`: fn(values of one column) recomputed on each replicate's resampled values.
- any other callable: recomputed on each resampled frame (slow, general).

NaN: a replicate whose statistic is NaN (for example, no drawn prompt has a trigram) is left out of
the quantiles, and `finite_resamples` in `path_trends` says how many remained; an undefined (NaN)
estimate gets a NaN interval.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmlerp.score import text

Statistic = Callable[[pd.DataFrame], float]
PROMPT = "prompt_id"
ENDPOINT_TOLERANCE = 1e-12  # a coordinate within this of 0 or 1 is that endpoint
MIN_RANK_POINTS = 3  # with two points ρ is ±1 by construction


@dataclass(frozen=True)
class PromptRatio:
    """A statistic T = Σ_p a_p / Σ_p b_p over the prompts p of a frame (NaN when Σ_p b_p = 0).

    `parts(frame, by)` gives a and b (columns "a", "b") per group of the columns `by`, sorted.
    """

    name: str
    parts: Callable[[pd.DataFrame, list[str]], pd.DataFrame]

    def __call__(self, frame: pd.DataFrame) -> float:
        parts = self.parts(frame, [PROMPT])
        return float(ratio(parts.a.to_numpy(), parts.b.to_numpy(), np.ones((1, len(parts))))[0])


@dataclass(frozen=True)
class ColumnStatistic:
    """fn applied to one column's values; a replicate applies it to the resampled values."""

    column: str
    fn: Callable[[np.ndarray], float]

    def __call__(self, frame: pd.DataFrame) -> float:
        return float(self.fn(frame[self.column].to_numpy()))


def _mean_parts(column: str, frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    values = frame[column].to_numpy(dtype=np.float64)
    scored = ~np.isnan(values)
    parts = pd.DataFrame({"a": np.where(scored, values, 0.0), "b": scored.astype(np.float64)})
    return parts.groupby([frame[k].to_numpy() for k in by]).sum().rename_axis(by)


def sample_mean(column: str) -> PromptRatio:
    """Mean of `column` over the samples where it is not NaN: a_p = Σ values, b_p = their count.

    Pandas' `Series.mean` and `mean_perplexity` (NaN = unscored or empty) define the same number.
    """
    return PromptRatio(column, functools.partial(_mean_parts, column))


def _prompt_parts(fn, column: str, frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    groups = frame.groupby(by, sort=True)[column].agg(list)
    values = np.array([fn(v) for v in groups], dtype=np.float64)
    defined = ~np.isnan(values)
    return pd.DataFrame(
        {"a": np.where(defined, values, 0.0), "b": defined.astype(np.float64)}, index=groups.index
    )


def prompt_mean(name: str, fn: Callable[[list], float], column: str) -> PromptRatio:
    """Mean over prompts of fn(a prompt's values of `column`), prompts where it is NaN left out."""
    return PromptRatio(name, functools.partial(_prompt_parts, fn, column))


def distinct(n: int) -> PromptRatio:
    """distinct-n per prompt averaged over prompts: `score.text.distinct_by_prompt`'s definition."""
    return prompt_mean(f"distinct_{n}", functools.partial(text.distinct_n, n=n), "continuation")


def ratio(a: np.ndarray, b: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(R,) Σ_p w_rp·a_p / Σ_p w_rp·b_p for draw counts w (R, P); NaN where Σ w·b = 0.

    An infinite a_p (an overflowed perplexity) makes every replicate that draws it infinite,
    as it makes the plain mean infinite; 0·inf never appears.
    """
    finite = np.isfinite(a)
    num = counts @ np.where(finite, a, 0.0)
    if not finite.all():
        num = num + np.where(counts[:, ~finite] > 0, a[~finite], 0.0).sum(axis=1)
    den = counts @ b
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), math.nan)


def check_settings(resamples: int, confidence: float) -> None:
    """Raise ValueError unless resamples ≥ 1 and 0 < confidence < 1."""
    if not isinstance(resamples, int | np.integer) or resamples < 1:
        raise ValueError(f"resamples must be an integer >= 1, got {resamples!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")


def prompts_of(samples: pd.DataFrame) -> np.ndarray:
    """The sorted unique prompt ids of a frame: the order in which draws index prompts."""
    if PROMPT not in samples.columns:
        raise ValueError(f"samples have no {PROMPT!r} column: {list(samples.columns)}")
    if samples.empty:
        raise ValueError("no samples: a bootstrap over prompts needs at least one prompt")
    return np.sort(samples[PROMPT].unique())


def bootstrap_draws(n_prompts: int, resamples: int, seed: int) -> np.ndarray:
    """(R, P) prompt indices, drawn with replacement by numpy's Generator seeded with `seed`."""
    return np.random.default_rng(seed).integers(0, n_prompts, size=(resamples, n_prompts))


def draw_counts(draws: np.ndarray) -> np.ndarray:
    """(R, P) float counts w_rp: how often replicate r drew prompt p."""
    r, p = draws.shape
    flat = (draws + p * np.arange(r)[:, None]).ravel()
    return np.bincount(flat, minlength=r * p).reshape(r, p).astype(np.float64)


def replicates(
    samples: pd.DataFrame, statistic: Statistic, prompts: np.ndarray, draws: np.ndarray
) -> np.ndarray:
    """(R,) the statistic on each replicate's resampled frame (prompts: the draws' order)."""
    if isinstance(statistic, PromptRatio):
        parts = statistic.parts(samples, [PROMPT]).reindex(prompts, fill_value=0.0)
        return ratio(parts.a.to_numpy(), parts.b.to_numpy(), draw_counts(draws))
    codes = pd.Categorical(samples[PROMPT], categories=prompts).codes
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes, minlength=len(prompts))
    starts = np.cumsum(sizes) - sizes
    if isinstance(statistic, ColumnStatistic):
        values = samples[statistic.column].to_numpy()
        return np.array([statistic.fn(values[_rows(order, starts, sizes, d)]) for d in draws])
    frames = (_resampled(samples, order, starts, sizes, d) for d in draws)
    return np.array([statistic(frame) for frame in frames], dtype=np.float64)


def _resampled(samples, order, starts, sizes, draw) -> pd.DataFrame:
    """The samples of the drawn prompts, each draw relabelled with its position as prompt_id."""
    rows = _rows(order, starts, sizes, draw)
    return samples.iloc[rows].assign(**{PROMPT: np.repeat(np.arange(len(draw)), sizes[draw])})


def _rows(order: np.ndarray, starts: np.ndarray, sizes: np.ndarray, draw: np.ndarray):
    """Row positions of every sample of the drawn prompts, draw by draw."""
    lengths = sizes[draw]
    begin = np.repeat(starts[draw] - (np.cumsum(lengths) - lengths), lengths)
    return order[begin + np.arange(lengths.sum())]


def percentile_interval(
    estimate: float, values: np.ndarray, confidence: float
) -> tuple[float, float]:
    """The (1-c)/2 and (1+c)/2 quantiles of the non-NaN replicates; NaN if none or T̂ is NaN."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if math.isnan(estimate) or not values.size:
        return math.nan, math.nan
    lo, hi = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def point_intervals(
    samples: pd.DataFrame, statistic: Statistic, *, resamples: int, confidence: float, seed: int
) -> tuple[float, float, float]:
    """(T̂, lo, hi): the statistic and its percentile bootstrap interval over prompts."""
    check_settings(resamples, confidence)
    prompts = prompts_of(samples)
    draws = bootstrap_draws(len(prompts), resamples, seed)
    estimate = float(statistic(samples))
    lo, hi = percentile_interval(
        estimate, replicates(samples, statistic, prompts, draws), confidence
    )
    return estimate, lo, hi


def barrier(coordinates: Sequence[float], values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Barrier of a metric m on [0, 1], absolute and relative, for values (..., N) → (...,).

        B = max_{j : 0 < α_j < 1} m_j − (m(α=0) + m(α=1)) / 2,      B_rel = B / ((m(0) + m(1)) / 2)

    The git re-basin barrier (Ainsworth et al. 2022) restricted to the interior of [0, 1]:
    points outside [0, 1] are ignored. B > 0 when the path rises above its endpoints (a
    perplexity barrier); B_rel is meant for positive metrics such as perplexity. NaN when the
    grid lacks α = 0, α = 1 or an interior point, when an endpoint's m is NaN, when every interior
    m is NaN (NaN interior points are otherwise skipped), and (B_rel) when the endpoints' mean is 0.
    """
    x = np.asarray(coordinates, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    ends = [np.flatnonzero(np.abs(x - e) <= ENDPOINT_TOLERANCE) for e in (0.0, 1.0)]
    interior = (x > ENDPOINT_TOLERANCE) & (x < 1 - ENDPOINT_TOLERANCE)
    if not (ends[0].size and ends[1].size and interior.any()):
        nan = np.full(v.shape[:-1], math.nan)
        return nan, nan.copy()
    middle = (v[..., ends[0][0]] + v[..., ends[1][0]]) / 2
    absolute = np.fmax.reduce(v[..., interior], axis=-1) - middle
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(middle != 0, absolute / np.where(middle != 0, middle, 1.0), math.nan)
    return absolute, relative


def spearman(coordinates: Sequence[float], values: np.ndarray) -> np.ndarray:
    """Spearman's ρ between the coordinate and the metric, for values (..., N) → (...,).

    ρ is Pearson's correlation of the ranks (ties get their mean rank). Points whose metric is NaN
    are left out of that path's ρ; ρ is NaN when fewer than 3 points remain or the remaining
    metric is constant.
    """
    x = np.asarray(coordinates, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    rows = v.reshape(-1, v.shape[-1])
    out = np.full(len(rows), math.nan)
    masks, inverse = np.unique(~np.isnan(rows), axis=0, return_inverse=True)
    for k, mask in enumerate(masks):
        if mask.sum() < MIN_RANK_POINTS:
            continue
        chosen = inverse.reshape(-1) == k
        rx = ranks(x[mask][None, :])[0]
        ry = ranks(rows[chosen][:, mask])
        dx = rx - rx.mean()
        dy = ry - ry.mean(axis=1, keepdims=True)
        den = np.sqrt((dx @ dx) * (dy * dy).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = np.where(den > 0, (dy @ dx) / np.where(den > 0, den, 1.0), math.nan)
        out[chosen] = np.clip(rho, -1.0, 1.0)
    return out.reshape(v.shape[:-1])


def ranks(values: np.ndarray) -> np.ndarray:
    """(m, n) ranks 1..n within each row, ties given their mean rank (as scipy's `rankdata`).

    Written in numpy: importing scipy.stats costs about a second and a half in a light job.
    """
    m, n = values.shape
    order = np.argsort(values, axis=1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=1)
    starts = np.ones((m, n), dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    group = (np.cumsum(starts, axis=1) - 1 + n * np.arange(m)[:, None]).ravel()
    position = np.broadcast_to(np.arange(1.0, n + 1), (m, n)).ravel()
    mean_rank = np.bincount(group, weights=position, minlength=m * n) / np.maximum(
        np.bincount(group, minlength=m * n), 1
    )
    out = np.empty((m, n))
    np.put_along_axis(out, order, mean_rank[group].reshape(m, n), axis=1)
    return out


def _summary(estimate: float, values: np.ndarray, confidence: float) -> dict[str, float | int]:
    lo, hi = percentile_interval(float(estimate), values, confidence)
    finite = int((~np.isnan(values)).sum())
    return {"estimate": float(estimate), "lo": lo, "hi": hi, "finite_resamples": finite}


def path_trends(
    samples_by_point: Mapping[str, pd.DataFrame],
    coordinates: Sequence[float],
    statistic: Statistic,
    *,
    resamples: int,
    confidence: float,
    seed: int,
) -> dict:
    """A metric along a path, its barrier on [0, 1] and its Spearman ρ, paired over prompts.

    One draw of the prompts (seeded) is used at every point, so each replicate is a whole path.
    Every point must hold the same prompts. Returns the per-point estimates and intervals (the
    same as `point_intervals` with this seed), and `barrier`, `relative_barrier` (see `barrier`;
    `at` is the coordinate of the interior maximum of the estimate) and `spearman` (see
    `spearman`), each as estimate, lo, hi and the number of replicates where it is defined.
    """
    check_settings(resamples, confidence)
    points = list(samples_by_point)
    x = [float(c) for c in coordinates]
    if len(x) != len(points):
        raise ValueError(f"{len(points)} points but {len(x)} coordinates")
    prompts = _common_prompts(samples_by_point)
    draws = bootstrap_draws(len(prompts), resamples, seed)
    frames = samples_by_point.values()
    estimate = np.array([statistic(f) for f in frames], dtype=np.float64)
    values = np.column_stack([replicates(f, statistic, prompts, draws) for f in frames])
    intervals = [percentile_interval(e, values[:, j], confidence) for j, e in enumerate(estimate)]
    absolute, relative = barrier(x, estimate)
    rep_absolute, rep_relative = barrier(x, values)
    interior = [j for j, c in enumerate(x) if 0 < c < 1 and not math.isnan(estimate[j])]
    peak = max(interior, key=lambda j: estimate[j]) if not math.isnan(absolute) else None
    at = math.nan if peak is None else x[peak]
    return {
        "points": points,
        "coordinates": x,
        "estimate": estimate.tolist(),
        "lo": [lo for lo, _ in intervals],
        "hi": [hi for _, hi in intervals],
        "n_prompts": len(prompts),
        "barrier": {**_summary(absolute, rep_absolute, confidence), "at": at},
        "relative_barrier": _summary(relative, rep_relative, confidence),
        "spearman": _summary(spearman(x, estimate), spearman(x, values), confidence),
    }


def _common_prompts(samples_by_point: Mapping[str, pd.DataFrame]) -> np.ndarray:
    """The prompts every point shares; ValueError naming a point whose prompts differ."""
    if not samples_by_point:
        raise ValueError("a path needs at least one point")
    (first, frame), *rest = samples_by_point.items()
    prompts = prompts_of(frame)
    for point, other in rest:
        mine = prompts_of(other)
        if not np.array_equal(mine, prompts):
            odd = sorted(set(mine).symmetric_difference(prompts))
            raise ValueError(
                f"point {point!r} does not hold the prompts of {first!r} (e.g. {odd[:3]}): "
                "a paired bootstrap needs the same prompts at every point"
            )
    return prompts
