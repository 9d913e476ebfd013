"""Merge methods beyond one affine combination: TIES, DARE and SLERP, tensor by tensor.

Each method is a pure function of named base state dicts and the parameters of a merge
(`families.point_merge`'s {"method", "params"}). As in mergekit, every floating-point tensor is
merged by the method — embeddings, LayerNorm gains and biases, the (tied) LM head alike: none of
the three papers exempts a tensor. Integer and bool buffers are copied (they must be equal, as
in `merge.combine`), tied tensors are merged once and stay tied, and everything is computed in
float32 (float64 where a base holds float64) and cast once. The affine methods (linear, task
arithmetic) are expanded to coefficients by `families.coefficients` and go to `merge.combine`.

Task vectors τ_i = θ_i − θ0 (Ilharco et al. 2023, https://arxiv.org/abs/2212.04089), weighted
τ'_i = w_i·τ_i by the merge's per-model weights (1 in the papers; mergekit's `weight`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from lmlerp.space import families
from lmlerp.space.merge import check_bases, combine, per_tensor

DOT_THRESHOLD = 0.9995  # SLERP falls back to a straight line when |cos Ω| exceeds it (Ω < 1.8°)
NORM_EPS = 1e-8  # a vector of norm ≤ this is not normalised (SLERP)
L1_EPS = 1e-7  # mergekit's L1 rescale leaves a tensor alone when a norm is below this
NORMALIZE_EPS = 1e-8  # DARE-linear's Σ w_i below this divides by 1 (mergekit)


# --- the papers' operations on one tensor ------------------------------------------------------


def trim(tau: torch.Tensor, density: float, threshold: float | None = None) -> torch.Tensor:
    """TIES step 1, Trim (Yadav et al. 2023, https://arxiv.org/abs/2306.01708, §3): keep the
    top-k fraction of |τ| and set the rest to 0, τ̂ = τ ⊙ 1[|τ| among the top-k].

    Here per tensor: the k = max(1, ⌊density·n⌋) largest magnitudes of its n entries (mergekit's
    count; the paper's code keeps one more, |τ| ≥ its (n − ⌊density·n⌋)-th smallest). With
    `threshold` (the paper's model-wide trim) every entry with |τ| ≥ threshold is kept.
    """
    if threshold is not None:
        return tau * (tau.abs() >= threshold)
    if density >= 1 or tau.numel() == 0:
        return tau
    k = max(1, int(density * tau.numel()))
    keep = torch.zeros(tau.numel(), dtype=torch.bool, device=tau.device)
    keep[torch.topk(tau.abs().reshape(-1), k, sorted=False).indices] = True
    return tau * keep.view(tau.shape)


def model_threshold(taus: Sequence[torch.Tensor], density: float) -> float:
    """The magnitude of the k-th largest |τ| over a whole task vector, k = max(1, ⌊density·n⌋)
    (the paper trims the flattened model; `trim(…, threshold=…)` applies it)."""
    flat = torch.cat([t.abs().reshape(-1).float() for t in taus])
    k = max(1, int(density * flat.numel()))
    return float(torch.kthvalue(flat.cpu(), flat.numel() - k + 1).values)


def disjoint_merge(
    taus: torch.Tensor, abs_weights: torch.Tensor, normalize: bool = True
) -> torch.Tensor:
    """TIES steps 2–3 on stacked trimmed task vectors τ̂ (n, …): Elect and Disjoint Merge.

    γ_m = sgn(Σ_t τ̂_t) per entry; A = {t : sgn(τ̂_t) = γ_m}; τ_m = Σ_{t∈A} τ̂_t / Σ_{t∈A} |w_t|
    (the paper's 1/|A| when every |w_t| = 1; mergekit divides by Σ_{t∈A} w_t, the same for
    positive weights). Where Σ_t τ̂_t = 0 exactly, γ_m = 0 and no non-zero entry agrees, so
    τ_m = 0 (the paper's equation; mergekit elects + there, its code the global majority sign).
    `normalize=False` sums the agreeing entries instead (mergekit's `normalize: false`).
    """
    elected = torch.sign(taus.sum(dim=0))  # γ_m
    agree = (torch.sign(taus) == elected) & (elected != 0)  # (n, …)
    total = (taus * agree).sum(dim=0)
    if not normalize:
        return total
    shape = (-1,) + (1,) * (taus.dim() - 1)
    divisor = (abs_weights.view(shape) * agree).sum(dim=0)
    return total / torch.where(divisor == 0, torch.ones_like(divisor), divisor)


def tensor_seed(seed: int, base: str, tensor: str) -> int:
    """A 64-bit seed per (merge seed, base, tensor): the same mask wherever and whenever drawn."""
    digest = hashlib.sha256(f"{seed}\0{base}\0{tensor}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def drop(tau: torch.Tensor, p: float, seed: int, rescale: str | None = "inverse") -> torch.Tensor:
    """DARE (Yu et al. 2023, https://arxiv.org/abs/2311.03099, Eq. 2): m ~ Bernoulli(p) per
    entry, τ̃ = (1 − m) ⊙ τ / (1 − p).

    The mask is drawn on the CPU from a generator seeded with `seed` (`tensor_seed`), so it
    does not depend on the device or on other tensors. `rescale`: "inverse" is the paper's
    1/(1 − p); "l1" is mergekit 0.1.5's (the kept entries scaled so that ‖τ̃‖₁ = ‖τ‖₁); None
    keeps the survivors as they are.
    """
    if p == 0:
        return tau
    generator = torch.Generator().manual_seed(seed)
    keep = torch.rand(tau.shape, generator=generator) >= p  # P(keep) = 1 − p
    kept = tau * keep.to(tau.device)
    if rescale == "inverse":
        return kept / (1 - p)
    if rescale == "l1":
        return _l1_rescale(tau, kept)
    return kept


def _l1_rescale(tau: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """mergekit's `rescaled_masked_tensor` with the L1 norm: kept·‖τ‖₁/‖kept‖₁."""
    before, after = float(tau.abs().sum()), float(kept.abs().sum())
    return kept if before < L1_EPS or after < L1_EPS else kept * (before / after)


def slerp(t: float, v0: torch.Tensor, v1: torch.Tensor) -> torch.Tensor:
    """Spherical linear interpolation of one tensor (Shoemake 1985), t = 0 → v0, t = 1 → v1.

    cos Ω = ⟨v0/‖v0‖, v1/‖v1‖⟩, then slerp = sin((1 − t)Ω)/sin Ω · v0 + sin(tΩ)/sin Ω · v1 on
    the unnormalised tensors (norms interpolate too). When |cos Ω| > DOT_THRESHOLD (0.9995:
    Ω < 1.8° or > 178.2°, where sin Ω → 0 makes the ratio unstable) it falls back to the line
    (1 − t)·v0 + t·v1, as mergekit does; so does an empty tensor. A norm ≤ 1e-8 is taken as 1.
    """
    dtype = torch.float64 if torch.float64 in (v0.dtype, v1.dtype) else torch.float32
    a, b = v0.to(dtype), v1.to(device=v0.device, dtype=dtype)
    if a.numel() == 0:
        return (1 - t) * a + t * b
    norm_a, norm_b = (float(torch.linalg.vector_norm(x)) for x in (a, b))
    norm_a, norm_b = (n if n > NORM_EPS else 1.0 for n in (norm_a, norm_b))
    dot = min(1.0, max(-1.0, float(((a / norm_a) * (b / norm_b)).sum())))
    if abs(dot) > DOT_THRESHOLD:
        return (1 - t) * a + t * b
    omega = math.acos(dot)
    return (math.sin((1 - t) * omega) / math.sin(omega)) * a + (
        math.sin(t * omega) / math.sin(omega)
    ) * b


# --- whole merges ------------------------------------------------------------------------------


def _ties(key: str, base: torch.Tensor, thetas: Mapping[str, torch.Tensor], params, context):
    """θ0 + λ·τ_m with τ_m the disjoint merge of the weighted trimmed task vectors."""
    taus = []
    for name, theta in thetas.items():
        tau = theta - base
        trimmed = trim(tau, params["densities"][name], context.get(name))
        if params["rescale"] == "l1":
            trimmed = _l1_rescale(tau, trimmed)
        taus.append(params["weights"][name] * trimmed)
    merged = disjoint_merge(torch.stack(taus), _abs_weights(params, base), params["normalize"])
    return base + params["lambda"] * merged


def _dare(key: str, base: torch.Tensor, thetas: Mapping[str, torch.Tensor], params, context):
    """θ0 + λ·combine(w_i·DARE(τ_i)): a sum (linear) or TIES's elect and disjoint merge."""
    taus = torch.stack([
        params["weights"][name] * drop(theta - base, params["drop_rates"][name],
                                       tensor_seed(params["seed"], name, key), params["rescale"])
        for name, theta in thetas.items()
    ])  # fmt: skip
    if params["combination"] == "ties":
        merged = disjoint_merge(taus, _abs_weights(params, base), params["normalize"])
    else:
        merged = taus.sum(dim=0)
        total = math.fsum(params["weights"].values())
        if params["normalize"] and abs(total) >= NORMALIZE_EPS:
            merged = merged / total
    return base + params["lambda"] * merged


def _abs_weights(params: Mapping[str, Any], like: torch.Tensor) -> torch.Tensor:
    weights = [abs(float(w)) for w in params["weights"].values()]
    return torch.tensor(weights, dtype=like.dtype, device=like.device)


def merge(
    definition: Mapping[str, Any],
    bases: Mapping[str, Mapping[str, torch.Tensor]],
    out_dtype: torch.dtype = torch.float32,
) -> dict[str, torch.Tensor]:
    """The weights of one merge `definition` ({"method", "params"}) of named base state dicts.

    The bases are checked first (`merge.combine`'s checks: same names, shapes, finite values),
    so that a bad merge names its culprit before any arithmetic.
    """
    coefficients = families.coefficients(definition)
    if coefficients is not None:
        return combine(bases, coefficients, out_dtype)
    method, params = definition["method"], definition["params"]
    if method not in ("ties", "dare", "slerp"):
        raise ValueError(f"unknown merge method {method!r}; choose one of "
                         f"{sorted(('ties', 'dare', 'slerp', *families.AFFINE))}")  # fmt: skip
    used = families.bases_of(definition)
    check_bases(bases, used)  # before TIES's thresholds read them
    context = _thresholds(params, bases, used) if method == "ties" else {}

    def merge_tensor(key: str, values: list[torch.Tensor]) -> torch.Tensor:
        return _merge_tensor(method, params, key, values, used, context)

    return per_tensor(bases, used, merge_tensor, out_dtype, checked=True)


def _merge_tensor(method, params, key, values, used, context) -> torch.Tensor:
    """One tensor of a TIES, DARE or SLERP merge, at float32 (float64 if a base holds it)."""
    dtype = torch.float64 if any(v.dtype == torch.float64 for v in values) else torch.float32
    first = values[0]
    values = [v.to(device=first.device, dtype=dtype) for v in values]
    if method == "slerp":
        return slerp(params["t"], values[0], values[1])
    base, thetas = values[0], dict(zip(used[1:], values[1:], strict=True))
    return (_ties if method == "ties" else _dare)(key, base, thetas, params, context)


def _thresholds(params, bases, used) -> dict[str, float]:
    """Model-wide trim (`scope: model`): each task vector's magnitude threshold, else none."""
    if params["scope"] != "model":
        return {}
    base = bases[used[0]]
    floats = _unique_floats(base)
    return {
        name: model_threshold([bases[name][k].float() - base[k].float() for k in floats],
                              params["densities"][name])
        for name in used[1:]
    }  # fmt: skip


def _unique_floats(state: Mapping[str, torch.Tensor]) -> list[str]:
    """The floating-point tensors of a state dict, one key per storage (tied weights once)."""
    seen, keys = set(), []
    for key, value in state.items():
        ident = (value.data_ptr(), tuple(value.shape), value.stride())
        if value.is_floating_point() and ident not in seen:
            seen.add(ident)
            keys.append(key)
    return keys
