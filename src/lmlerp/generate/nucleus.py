"""Nucleus (top-p) sampling, exact and cheap: the step's dominant cost made small.

A full sort of (B, V) logits with their indices is a decode step's dominant cost (on CPU ≈70% of
a 4 × 128 GPT-2's step; on an H100 three times GPT-2 Large's forward floor, DESIGN §6).
`_nucleus` first takes the top-k probability values and decides from them alone where that is
exact (the nucleus fits in k and no tie crosses its boundary), sorts the full row of probability
values only for the other rows, and never sorts token ids; `next_token` then draws by an
inverse-CDF lookup of each row's own uniform instead of `multinomial`. Both are exact, and
tested against a full stable sort.
"""

from __future__ import annotations

import numpy as np
import torch

TOP_K = 256  # candidates of the top-k prefilter; rows whose top-k mass is short of p fall back


def top_p_filter(logits: torch.Tensor, p: float, top_k: int = TOP_K) -> torch.Tensor:
    """Nucleus (top-p) filtering: logits outside the nucleus become −inf.

    The nucleus V(p) is the smallest set of highest-probability tokens whose cumulative
    probability reaches p: Σ_{x ∈ V(p)} P(x) ≥ p (Holtzman et al. 2020, Section 3.1,
    https://arxiv.org/abs/1904.09751). With tokens sorted by decreasing probability, token k is
    kept iff the mass before it, Σ_{j<k} P(x_j), is < p; the top token is always kept, so p → 0
    is greedy and p = 1 keeps every token of non-zero probability.

    Ties are broken deterministically, as a stable sort would: when equal probabilities straddle
    the boundary, the lower token ids are kept. This is the rule of Hugging Face
    `TopPLogitsWarper` (which removes tokens whose ascending cumulative probability is ≤ 1 − p),
    up to float rounding at the boundary and except for ties, which its unstable sort breaks
    arbitrarily. The older `top_k_top_p_filtering` used by DExperts keeps a token when the mass
    before it is ≤ p, one more token when that mass equals p exactly (probability zero for
    continuous logits).

    Args:
        logits: (..., V) unnormalised log-probabilities.
        p: nucleus mass in [0, 1].
        top_k: candidates of the exact top-k prefilter (0: full sort); see `_nucleus`.

    Returns:
        A tensor of the same shape, with −inf outside the nucleus.
    """
    check_p("top-p", p)
    if p == 1.0:
        return logits  # rounding could push the cumulative mass to 1 before the last tokens
    _, keep = _nucleus(logits, p, top_k)
    return logits.masked_fill(~keep, float("-inf"))


def check_p(name: str, p: float | None) -> None:
    """ValueError naming `name` unless p is None or lies in [0, 1]."""
    if p is not None and not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {p}")


def _nucleus(
    logits: torch.Tensor, p: float, top_k: int = TOP_K
) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities and nucleus mask, both (..., V) in vocabulary order; see `top_p_filter`.

    Only probability values are sorted, never token ids: the nucleus is every token of
    probability ≥ τ, the smallest nucleus probability, unless tokens tie with τ beyond the
    nucleus size m; then only the lowest-id ones that fit are kept — the stable sort's answer
    without its permutation.

    Top-k prefilter (exact): the k largest values are the first k of the full descending sort,
    so their cumulative sums are the sort's first k. Where the top-k mass reaches p, the nucleus
    size m = 1 + #{j < k−1 : cum_j < p} ≤ k is the full sort's; if moreover m < k and exactly m
    of the top-k values are ≥ τ, nothing outside the top k ties with τ and the nucleus is
    {x : P(x) ≥ τ}. The other rows (a flat distribution, a tie at the boundary) take the full
    sort. The set is the same either way; k only moves work between the two paths.
    """
    probs = logits.float().softmax(dim=-1)
    if probs.dim() != 2:
        flat, keep = _nucleus(logits.reshape(-1, logits.shape[-1]), p, top_k)
        return flat.view(probs.shape), keep.view(probs.shape)
    tau = probs.new_empty((probs.shape[0], 1))
    slow = torch.arange(probs.shape[0], device=probs.device)
    if 0 < top_k < probs.shape[-1] - 1:
        top = _top_values(probs, top_k)  # (B, k) descending
        m, tau, exact = _cut(top, p)
        exact &= m < top_k
        slow = (~exact[:, 0]).nonzero()[:, 0]
    if slow.numel():
        descending = _sort_descending(probs[slow])
        m_slow, tau[slow], exact = _cut(descending, p)
    keep = probs >= tau
    if slow.numel() and not exact.all():  # ties straddle the boundary: rare for float32 logits
        tied = slow[~exact[:, 0]]
        keep[tied] = _lowest_ids_first(probs[tied], m_slow[~exact[:, 0]], tau[tied])
    return probs, keep


def _cut(descending: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Nucleus size m, threshold τ and exactness of {P ≥ τ}, from sorted values; each (B, 1).

    `descending` holds each row's largest values in decreasing order (all V, or the top k).
    Token j (0-based, sorted) is kept iff the mass before it, cum_{j−1}, is < p: the top token
    always, then one more for every cumulative sum short of p. {P ≥ τ} is the nucleus when
    exactly m values are ≥ τ and, for a top-k prefix, when the prefix's mass reaches p.
    """
    cumulative = _running_sum(descending)
    target = cumulative.new_full((len(descending), 1), p)
    m = 1 + torch.searchsorted(cumulative[:, :-1].contiguous(), target)  # #{cum_j < p}
    tau = descending.gather(-1, m - 1)
    at_least_tau = torch.searchsorted(-descending, -tau, right=True)  # ascending negation
    return m, tau, (at_least_tau == m) & (cumulative[:, -1:] >= p)


FIXED_POINT = 2.0**40  # resolution of CUDA running sums of probabilities: 9e-13


def _running_sum(values: torch.Tensor, fixed_point: bool | None = None) -> torch.Tensor:
    """Cumulative sums along the last dimension, the same on every run.

    On CUDA a floating-point `cumsum` is non-deterministic (a parallel scan; it raises under
    `torch.use_deterministic_algorithms`, which evaluation jobs turn on), so probabilities are
    summed in int64 fixed point (exact, deterministic) with a resolution of 2⁻⁴⁰ per value and
    returned as float64. On CPU the sequential float32 `cumsum` is already deterministic.
    `fixed_point` forces either way (None: on CUDA only).
    """
    if not (values.is_cuda if fixed_point is None else fixed_point):
        return values.cumsum(dim=-1)
    fixed = (values.double() * FIXED_POINT).round_().long()
    return fixed.cumsum(dim=-1).double() / FIXED_POINT


def _lowest_ids_first(probs: torch.Tensor, m: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """Nucleus mask of rows where tokens tie with τ across the boundary: lowest ids kept."""
    above = probs > tau
    tied = probs == tau
    room = m - above.sum(dim=-1, keepdim=True)  # (B, 1) ≥ 1 tokens equal to τ fit
    return above | (tied & (tied.cumsum(dim=-1) <= room))


def _top_values(values: torch.Tensor, k: int) -> torch.Tensor:
    """The k largest values of each row, in decreasing order (no indices); (B, k)."""
    if values.device.type == "cpu":
        # numpy's partition + sort of k values: ≈1.8 ms for 110 × 8,192 floats on one core,
        # against 6–17 ms for torch.topk (k = 32–256), which also builds indices
        part = np.partition(values.detach().numpy(), values.shape[-1] - k, axis=-1)[:, -k:]
        return torch.from_numpy(-np.sort(-part, axis=-1))
    return torch.topk(values, k, dim=-1, sorted=True).values


def _sort_descending(values: torch.Tensor) -> torch.Tensor:
    """Values sorted in decreasing order along the last dimension (no indices)."""
    if values.device.type == "cpu":
        # numpy's SIMD sort of bare values is ≈20× faster than torch.sort on CPU, which also
        # builds indices: 5.6 ms for 165 × 8,192 floats on one core, against 113 ms
        return torch.from_numpy(-np.sort(-values.detach().numpy(), axis=-1))
    return torch.sort(values, dim=-1, descending=True).values


def next_token(
    logits: torch.Tensor,
    top_p: float | None,
    u: torch.Tensor | None,
    greedy: bool = False,
    top_k: int = TOP_K,
) -> torch.Tensor:
    """One token per row of (B, V) logits: the argmax if `greedy`, else a top-p draw; (B,).

    A draw is an inverse-CDF lookup: the row's uniform u ∈ [0, 1) (`u`, (B, 1), from the row's
    own generator: `sampler.sequence_uniforms`), scaled to the mass of the nucleus, searched in
    the cumulative sums of the nucleus probabilities in vocabulary order. It has the distribution
    of `torch.multinomial` on the softmax of `top_p_filter(logits, top_p)`, without a second
    softmax or `multinomial` itself (≈40 ms for 165 × 8,192 on one core). `top_p=None` or 1
    draws from the full distribution. `top_k` sizes the exact prefilter of `_nucleus` (0: the
    full sort always). `u` may be None when `greedy`.
    """
    check_p("top_p", top_p)
    if greedy:
        return logits.argmax(dim=-1)
    if u is None or u.shape != (logits.shape[0], 1):
        raise ValueError(f"next_token needs uniforms of shape ({logits.shape[0]}, 1)")
    if top_p is None or top_p == 1.0:
        weights = logits.float().softmax(dim=-1)
    else:
        probs, keep = _nucleus(logits, top_p, top_k)
        weights = torch.where(keep, probs, 0.0)
    cumulative = _running_sum(weights)  # (B, V)
    total = cumulative[:, -1:].contiguous()  # (B, 1)
    # right=True skips zero-probability tokens; a u rounded up to `total` falls back on the last
    # token of positive probability, the first to reach `total`
    index = torch.searchsorted(cumulative, u.to(total.dtype) * total, right=True)
    return index.minimum(torch.searchsorted(cumulative, total)).squeeze(-1)
