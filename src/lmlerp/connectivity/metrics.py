"""Linear mode connectivity: barriers of a loss curve sampled along a straight path.

The path between two models is θ(t) = (1 - t)·θ1 + t·θ2, t ∈ [0, 1], and the curve is the loss
L(t) = L(θ(t)) measured on a grid 0 = t_0 < t_1 < ... < t_{N-1} = 1 (any N ≥ 2: no grid size is
hard-wired, DESIGN.md §5). Everything here is pure numpy on that sampled curve.

The chord barrier of a sub-segment [t_i, t_k] is how far the curve rises above the straight chord
between its end losses:

    B(i, k) = max_{i ≤ j ≤ k} [L_j - ((t_k - t_j)/(t_k - t_i)·L_i + (t_j - t_i)/(t_k - t_i)·L_k)]

It is ≥ 0 (j = i and j = k give exactly 0), it is 0 for a loss that is linear in t, and it only
reads grid points i..k. Then (Thaman report; Juneja et al. 2022, https://arxiv.org/abs/2205.12411;
Entezari et al. 2022, https://arxiv.org/abs/2110.06296, who also use the chord):

    BH  = B(0, N-1)                                      barrier height, against the chord
    CG  = max_{i < k} B(i, k)                            convexity gap, over all sub-segments
    ICG = max_{a < b} max_{a ≤ i < k ≤ b} B(i, k)        improved convexity gap (= CG, see below)

and, under its own name, the barrier of git re-basin (Ainsworth et al. 2022,
https://arxiv.org/abs/2209.04836), measured against the endpoints' mean rather than the chord:

    rebasin = max_j L_j - (L_0 + L_{N-1}) / 2

CG is also the largest height of the sampled curve above its lower convex envelope: for a fixed j,
the lowest chord over t_j among pairs i ≤ j ≤ k is the lower convex hull at t_j (in one dimension
two hull vertices, one on each side, suffice). The tests check that characterisation.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike

ENDPOINT_TOLERANCE = 1e-12  # t_0 and t_{N-1} must equal 0 and 1 to this absolute tolerance
METRICS = ("barrier_height", "convexity_gap", "improved_convexity_gap", "rebasin_barrier")


def _validated(t: ArrayLike, loss: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Return t and loss as float64 vectors, or raise ValueError naming what is wrong."""
    t = np.asarray(t, dtype=np.float64)
    loss = np.asarray(loss, dtype=np.float64)
    if t.ndim != 1 or loss.ndim != 1:
        raise ValueError(f"t and loss must be 1-D, got shapes {t.shape} and {loss.shape}")
    if t.size != loss.size:
        raise ValueError(f"t and loss differ in length: {t.size} != {loss.size}")
    if t.size < 2:
        raise ValueError(f"need at least 2 grid points (both endpoints), got {t.size}")
    for name, values in (("t", t), ("loss", loss)):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ValueError(f"{name} is not finite at index {bad[0]}: {values[bad[0]]}")
    if abs(t[0]) > ENDPOINT_TOLERANCE or abs(t[-1] - 1) > ENDPOINT_TOLERANCE:
        raise ValueError(f"t must start at 0 and end at 1, got t[0]={t[0]!r}, t[-1]={t[-1]!r}")
    steps = np.diff(t)
    if np.any(steps <= 0):
        i = int(np.flatnonzero(steps <= 0)[0])
        raise ValueError(
            f"t must be strictly increasing: t[{i}]={t[i]!r} >= t[{i + 1}]={t[i + 1]!r}"
        )
    return t, loss


def _excess(t_j, loss_j, t_i, loss_i, t_k, loss_k):
    """L_j minus the chord from (t_i, L_i) to (t_k, L_k) evaluated at t_j; broadcasts.

    The weights are computed as quotients first so that j = i and j = k give exactly 0.
    """
    span = t_k - t_i
    return loss_j - ((t_k - t_j) / span * loss_i + (t_j - t_i) / span * loss_k)


def _chord_barriers(t: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """Matrix B with B[i, k] = chord barrier of [t_i, t_k] for i < k, and -inf for i ≥ k.

    O(N³) time, O(N²) memory: about 0.05 s at N = 200.
    """
    n = t.size
    barriers = np.full((n, n), -np.inf)
    for i in range(n - 1):
        t_k, loss_k = t[i + 1 :, None], loss[i + 1 :, None]  # (K, 1): right ends k > i
        t_j, loss_j = t[None, i:], loss[None, i:]  # (1, J): interior points j ≥ i
        excess = _excess(t_j, loss_j, t[i], loss[i], t_k, loss_k)  # (K, J)
        inside = t_j <= t_k  # j ≤ k, since t is strictly increasing
        barriers[i, i + 1 :] = np.where(inside, excess, -np.inf).max(axis=1)
    return barriers


def chord_excess(t: ArrayLike, loss: ArrayLike) -> np.ndarray:
    """The curve's height above the chord, L(θ(t_j)) - ((1 - t_j)·L(θ1) + t_j·L(θ2)), per point.

    Zero at both endpoints; its maximum is the barrier height.
    """
    t, loss = _validated(t, loss)
    return _excess(t, loss, t[0], loss[0], t[-1], loss[-1])


def barrier_height(t: ArrayLike, loss: ArrayLike) -> float:
    """Barrier height BH = sup_t [L(θ(t)) - ((1 - t)·L(θ1) + t·L(θ2))] over the grid.

    Measured against the chord between the endpoint losses, so BH ≥ 0 always (the bracket is 0 at
    both endpoints) and BH = 0 for any loss linear in t, even when L(θ1) ≠ L(θ2).
    Juneja et al. 2022, https://arxiv.org/abs/2205.12411.
    """
    return float(chord_excess(t, loss).max())


def convexity_gap(t: ArrayLike, loss: ArrayLike) -> float:
    """Convexity gap CG = sup over sub-segments [γ, β] ⊂ [0, 1], γ < β on the grid, of BH there.

    CG = max_{i < k} max_{i ≤ j ≤ k} [L_j - ((t_k - t_j)/(t_k - t_i)·L_i
                                              + (t_j - t_i)/(t_k - t_i)·L_k)]

    The whole segment is one of the sub-segments, so CG ≥ BH ≥ 0; CG = 0 exactly when the sampled
    curve is convex. Two bumps with a dip below the endpoints between them give CG > BH: the chord
    from an endpoint down to the dip passes far below the bump. Evaluated literally, in O(N³).
    """
    t, loss = _validated(t, loss)
    return float(_chord_barriers(t, loss).max())


def improved_convexity_gap(t: ArrayLike, loss: ArrayLike) -> float:
    """Improved convexity gap ICG = sup over sub-segments [a, b] of CG on that sub-segment.

    Claim: ICG = CG, exactly, on any grid. Proof. Write S(a, b) for the set of grid pairs (i, k)
    with a ≤ i < k ≤ b, and B(i, k) for the chord barrier of [t_i, t_k], which only reads grid
    points i..k (so it is the same number whether computed on the whole grid or on a sub-grid
    containing them). Then CG on [t_a, t_b] is max_{S(a, b)} B, and
    ICG = max_{a < b} max_{S(a, b)} B.
    (≤) Every S(a, b) ⊂ S(0, N-1): a sub-segment of a sub-segment is a sub-segment, so each inner
    maximum is at most CG. (≥) The pair a = 0, b = N-1 is one of the outer choices and gives CG
    itself. Hence ICG = CG; here both are maxima of the very same floating-point numbers, so they
    agree bit for bit. □

    It is computed literally anyway (CG of every sub-grid, then the maximum; O(N⁴), about 0.2 s
    at N = 200), so that the identity is tested rather than assumed. Published tables (the Thaman
    report) can still show ICG ≠ CG: when each sub-segment is re-sampled on its own finer grid,
    the inner CG sees points the outer grid never evaluated; when losses are noisy estimates (a
    different data batch per evaluation); or when γ, β range over another set than the grid.
    """
    t, loss = _validated(t, loss)
    barriers = _chord_barriers(t, loss)
    n = t.size
    return float(
        max(barriers[a : b + 1, a : b + 1].max() for a in range(n) for b in range(a + 1, n))
    )


def rebasin_barrier(t: ArrayLike, loss: ArrayLike) -> float:
    """Git re-basin's loss barrier, max_t L(θ(t)) - ½·(L(θ1) + L(θ2)) over the grid.

    Ainsworth et al. 2022, https://arxiv.org/abs/2209.04836.
    Against the mean, not the chord: a straight line from L(θ1) to L(θ2) has rebasin barrier
    |L(θ2) - L(θ1)| / 2, not 0, which is why it is reported under this name and never as BH.
    """
    t, loss = _validated(t, loss)
    return float(loss.max() - (loss[0] + loss[-1]) / 2)


def curve_metrics(t: ArrayLike, loss: ArrayLike) -> dict[str, float]:
    """All four barriers of one loss curve, keyed by the function names in METRICS."""
    return {
        "barrier_height": barrier_height(t, loss),
        "convexity_gap": convexity_gap(t, loss),
        "improved_convexity_gap": improved_convexity_gap(t, loss),
        "rebasin_barrier": rebasin_barrier(t, loss),
    }


def delta(start: Mapping[str, float], end: Mapping[str, float]) -> dict[str, float]:
    """Signed Δmetric = metric(end of fine-tuning) − metric(start), per metric name.

    Positive when fine-tuning raised the metric. Both mappings must name the same metrics; the
    result keeps the order of `start`. The report's Tables 1–2 give its magnitude (`abs_delta`).
    """
    if set(start) != set(end):
        only_start, only_end = sorted(set(start) - set(end)), sorted(set(end) - set(start))
        raise ValueError(f"metric names differ: only at start {only_start}, only at end {only_end}")
    return {name: float(end[name]) - float(start[name]) for name in start}


def abs_delta(start: Mapping[str, float], end: Mapping[str, float]) -> dict[str, float]:
    """|Δmetric| = |metric(end of fine-tuning) − metric(start)|, per metric name: the report's Δ
    (Thaman, Tables 1–2), which drops the direction that `delta` keeps."""
    return {name: abs(value) for name, value in delta(start, end).items()}
