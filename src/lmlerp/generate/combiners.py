"""How the logits of several models become one distribution per step: plain or DExperts.

A combine function maps the list of (B, V) float32 logits of `models` to one (B, V) tensor;
`plain` serves a single (weight-interpolated) model, `dexperts` the output-space ensemble.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from lmlerp.generate.nucleus import check_p, top_p_filter

Combine = Callable[[list[torch.Tensor]], torch.Tensor]


def plain(logits_list: list[torch.Tensor]) -> torch.Tensor:
    """The combine function of a single model: its own logits."""
    return logits_list[0]


def dexperts(alpha: float, filter_p: float | None = None) -> Combine:
    """DExperts ensemble of a base, an expert and an anti-expert, as a combine function.

    z_t = z0_t + α·(z+_t − z−_t)  (Liu et al. 2021, https://arxiv.org/abs/2105.03023, Section 2),
    with logits from the models [θ0 (base), θ+ (expert), θ− (anti-expert)] in that order. If
    `filter_p` is set, z0 is first restricted to its own top-p nucleus (−inf outside), as in the
    DExperts code (`filter_p`, 0.9 in their experiments), so that the experts can only re-rank
    tokens the base finds plausible. The sampler's `top_p` then applies to z: 1.0 in the DExperts
    code (config `dexperts.top_p`), so that α = 0 is exactly nucleus-`filter_p` sampling from θ0.
    """
    check_p("filter_p", filter_p)

    def combine(logits_list: list[torch.Tensor]) -> torch.Tensor:
        if len(logits_list) != 3:
            raise ValueError(
                f"dexperts needs logits of 3 models [base, expert, anti-expert], "
                f"got {len(logits_list)}"
            )
        z0, z_pos, z_neg = logits_list
        if filter_p is not None:
            z0 = top_p_filter(z0, filter_p)
        return z0 + alpha * (z_pos - z_neg)

    return combine
