"""Weight arithmetic along paths: the checked fp32 combination θ = Σ_r c_r·θ_r of named bases.

`combine` builds one point's state dict; `Interpolator` rewrites one model in place, point after
point, in a single fused pass (what an evaluation job does). Both check every base first and
name the culprit of a mismatch (DESIGN §5). Recipes and their materialisation: `recipes`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence

import torch
from transformers import PreTrainedModel

from lmlerp.io import checkpoints


def _check_bases(
    bases: Mapping[str, Mapping[str, torch.Tensor]], used: Sequence[str]
) -> Mapping[str, torch.Tensor]:
    """Check the bases `used` before any arithmetic; return the reference (first) state dict."""
    missing = [name for name in used if name not in bases]
    if missing:
        raise ValueError(f"no base named {missing}; available bases: {sorted(bases)}")
    if not used:
        raise ValueError("no coefficients: a point combines at least one base")
    first = used[0]
    reference = bases[first]
    for name in used[1:]:
        state = bases[name]
        for tensor in reference:
            if tensor not in state:
                raise ValueError(f"base '{name}' lacks tensor '{tensor}' (present in '{first}')")
        for tensor in state:
            if tensor not in reference:
                raise ValueError(f"base '{name}' has tensor '{tensor}' that '{first}' lacks")
        for tensor, value in reference.items():
            if state[tensor].shape != value.shape:
                raise ValueError(
                    f"tensor '{tensor}' has shape {tuple(value.shape)} in base '{first}' but "
                    f"{tuple(state[tensor].shape)} in base '{name}'"
                )
            if state[tensor].is_floating_point() != value.is_floating_point():
                raise ValueError(
                    f"tensor '{tensor}' is {value.dtype} in base '{first}' but "
                    f"{state[tensor].dtype} in base '{name}'"
                )
    for name in used:
        checkpoints.check_finite(bases[name], f"base '{name}'")
    return reference


def _check_buffers(bases: Mapping[str, Mapping[str, torch.Tensor]], used: Sequence[str]) -> None:
    """Integer and bool buffers are not weights: they must be equal in every base (copied)."""
    for tensor, value in bases[used[0]].items():
        if value.is_floating_point():
            continue
        for name in used[1:]:
            if not torch.equal(bases[name][tensor].to(value.device), value):
                raise ValueError(
                    f"integer/bool buffer '{tensor}' differs between bases '{used[0]}' and "
                    f"'{name}'; buffers are copied, not combined"
                )


def check_bases(bases: Mapping[str, Mapping[str, torch.Tensor]], used: Sequence[str]) -> None:
    """Every check a merge of the bases `used` needs before its arithmetic: names, shapes and
    finite values (`_check_bases`), equal integer buffers (`_check_buffers`)."""
    _check_bases(bases, used)
    _check_buffers(bases, used)


def combine(
    bases: Mapping[str, Mapping[str, torch.Tensor]],
    coefficients: Mapping[str, float],
    out_dtype: torch.dtype = torch.float32,
) -> dict[str, torch.Tensor]:
    """The weights θ = Σ_r c_r·θ_r of one point, tensor by tensor.

    Every base named in `coefficients` is checked first (present, same tensor names, same shapes,
    finite), so that a bad merge fails before any arithmetic and names the culprit (DESIGN §5).
    Each tensor is accumulated in float32 (float64 if any base holds it in float64) in one pass
    over the bases and cast once to `out_dtype`. Integer and bool buffers are not weights: they
    must be equal in every base and are copied. Coefficients are used as given, never divided by
    their sum (which would change a non-affine combination and divide by zero at sum 0).
    Tensors that alias each other in every base (GPT-2's tied `lm_head.weight` and
    `transformer.wte.weight`) are combined once and alias in the result too.
    """
    used = list(coefficients)

    def weighted_sum(tensor: str, values: list[torch.Tensor]) -> torch.Tensor:
        wide = any(v.dtype == torch.float64 for v in values)
        acc = values[0].to(torch.float64 if wide else torch.float32) * coefficients[used[0]]
        for name, other in zip(used[1:], values[1:], strict=True):
            acc.add_(other.to(device=acc.device, dtype=acc.dtype), alpha=coefficients[name])
        return acc

    return per_tensor(bases, used, weighted_sum, out_dtype)


def per_tensor(
    bases: Mapping[str, Mapping[str, torch.Tensor]],
    used: list[str],
    merge_tensor: Callable[[str, list[torch.Tensor]], torch.Tensor],
    out_dtype: torch.dtype = torch.float32,
    checked: bool = False,
) -> dict[str, torch.Tensor]:
    """The state dict whose every floating-point tensor is `merge_tensor(name, [its value in
    each base of used])`, cast to `out_dtype`; the bases checked first (`check_bases`) unless
    the caller has `checked` them.

    Integer and bool buffers are copied (they must be equal in every base); tensors that alias
    each other in every base (a tied LM head) are merged once and alias in the result too.
    """
    if not checked:
        check_bases(bases, used)
    out: dict[str, torch.Tensor] = {}
    done: dict[tuple, torch.Tensor] = {}
    for tensor, value in bases[used[0]].items():
        values = [bases[name][tensor] for name in used]
        if not value.is_floating_point():
            out[tensor] = value.clone()
            continue
        alias = tuple((v.data_ptr(), v.dtype, tuple(v.shape), v.stride()) for v in values)
        if alias not in done:
            done[alias] = merge_tensor(tensor, values).to(out_dtype)
        out[tensor] = done[alias]
    return out


class Interpolator:
    """One model whose weights are rewritten in place, point after point: θ = Σ_r c_r·θ_r.

    An evaluation job walks many points of one family over the same few bases (DESIGN §2, §6).
    The bases are checked once (`combine`'s checks), their floating-point tensors laid out once
    as the rows of a (R, N) float32 matrix Θ on the target device, and the target model's
    parameters and float buffers re-pointed at views of one flat (N,) buffer. A point is then a
    single fused pass, the vector–matrix product θ = cᵀ·Θ with float32 accumulation, written
    straight into the model (or into a float32 scratch buffer cast once when the model runs in
    bf16): R·N·4 bytes read and N·bytes(dtype) written, no disk, no allocation of weight size.
    Tied tensors (GPT-2's `lm_head.weight` and `transformer.wte.weight`) are one column range,
    so they stay tied. Bases that a point does not name get coefficient 0.
    """

    def __init__(
        self,
        bases: Mapping[str, PreTrainedModel],
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.names = list(bases)
        states = {name: model.state_dict() for name, model in bases.items()}
        check_bases(states, self.names)
        self.device, self.dtype = torch.device(device), dtype
        self.model = copy.deepcopy(bases[self.names[0]]).to(self.device).eval()
        tensors: dict[int, tuple[str, torch.Tensor]] = {}  # unique float tensors by identity
        for key, value in self.model.state_dict(keep_vars=True).items():
            if value.is_floating_point():
                tensors.setdefault(id(value), (key, value))
        total = sum(value.numel() for _, value in tensors.values())
        # float32 rows even for bf16 models: the combination is accumulated at full precision
        self.stack = torch.empty((len(self.names), total), dtype=torch.float32, device=device)
        self.flat = torch.empty(total, dtype=dtype, device=device)
        self.scratch = None if dtype == torch.float32 else torch.empty_like(self.stack[0])
        offset = 0
        self.layout: dict[str, tuple[int, int, torch.Size]] = {}  # key → (offset, numel, shape)
        for key, value in tensors.values():
            n = value.numel()
            for row, name in enumerate(self.names):
                self.stack[row, offset : offset + n] = states[name][key].reshape(-1)
            value.data = self.flat[offset : offset + n].view(value.shape)
            self.layout[key] = (offset, n, value.shape)
            offset += n
        self.flat.copy_(self.stack[0])  # the first base until `rebuild`
        self.coefficients = torch.zeros(len(self.names), dtype=torch.float32)

    @property
    def nbytes(self) -> int:
        """Bytes one rebuild must move at least: every base row read, the weights written once."""
        return self.stack.numel() * self.stack.element_size() + (
            self.flat.numel() * self.flat.element_size()
        )

    @torch.no_grad()
    def rebuild(self, coefficients: Mapping[str, float]) -> PreTrainedModel:
        """Write θ = Σ_r c_r·θ_r into the model's parameters and return the model."""
        unknown = [name for name in coefficients if name not in self.names]
        if unknown:
            raise ValueError(f"no base named {unknown}; available bases: {self.names}")
        for row, name in enumerate(self.names):
            self.coefficients[row] = float(coefficients.get(name, 0.0))
        # torch.mv, not np.dot: numpy's threaded BLAS took 5× longer on a busy 2-core machine
        c = self.coefficients.to(self.device, non_blocking=True)
        if self.scratch is None:
            torch.mv(self.stack.T, c, out=self.flat)
        else:
            torch.mv(self.stack.T, c, out=self.scratch)
            self.flat.copy_(self.scratch)  # the one cast
        return self.model

    def base_states(self) -> dict[str, dict[str, torch.Tensor]]:
        """Each base's floating-point tensors as float32 views of its row of Θ (tied tensors
        once): the inputs of a merge that is no affine combination (`methods.merge`), at no
        extra memory."""
        return {
            name: {
                key: self.stack[row, offset : offset + n].view(shape)
                for key, (offset, n, shape) in self.layout.items()
            }
            for row, name in enumerate(self.names)
        }

    @torch.no_grad()
    def load(self, state: Mapping[str, torch.Tensor]) -> PreTrainedModel:
        """Write a merged state (keys of `layout`) into the model's parameters, cast once."""
        for key, (offset, n, _) in self.layout.items():
            self.flat[offset : offset + n].copy_(state[key].reshape(-1))
        return self.model
