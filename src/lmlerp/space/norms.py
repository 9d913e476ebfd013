"""How far apart two checkpoints are, tensor by tensor (the paper's Fig 9).

Rofin et al. 2022 compare θ+ with θ0 and DistilGPT-2 with GPT-C4 on one scale: fine-tuning moves
every tensor far less than independent pretraining does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import pandas as pd
import torch

_BLOCK = re.compile(r"^(?:.*\.)?(?:h|layers|layer|blocks)\.(\d+)\.(.+)$")


def _storage(tensor: torch.Tensor) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    """Where a tensor's elements live: two names with one storage are one tied parameter."""
    return tensor.data_ptr(), tuple(tensor.shape), tensor.stride()


def weight_difference_norms(
    state_a: Mapping[str, torch.Tensor], state_b: Mapping[str, torch.Tensor]
) -> pd.DataFrame:
    """Per-tensor RMS difference ‖w_a − w_b‖₂ / √numel(w) (the paper's Fig 9), in float64.

    Dividing by √numel makes tensors of different sizes comparable: it is the root mean square
    of the element-wise difference. Tensors keep their checkpoint names; a name such as
    `transformer.h.3.attn.c_attn.weight` gives layer 3 and kind `attn.c_attn.weight` (also
    `layers.N` / `blocks.N` of other architectures); other tensors get layer −1 and their full
    name as kind. Non-float tensors (buffers, masks) are skipped, and so is a tensor tied to an
    earlier one in both states (GPT-2's `lm_head.weight` is `transformer.wte.weight`): one
    parameter counts once in Fig 9 and in any mean over its rows. Ties are found by storage
    (`data_ptr`), which holds for any model whose state dict shares the tensor; a tie in one
    state only is no tie, and both tensors are compared.

    Returns:
        One row per tensor, columns tensor, layer, kind, value, in state_a's order.

    Raises:
        ValueError: the tensor names differ, or a tensor's shapes do (the error names it).
    """
    missing = sorted(set(state_a) ^ set(state_b))
    if missing:
        raise ValueError(f"state dicts differ in tensors: {missing[:5]}")
    rows, owners_a, owners_b = [], {}, {}
    for name, a in state_a.items():
        b = state_b[name]
        if a.shape != b.shape:
            raise ValueError(f"tensor '{name}': shape {tuple(a.shape)} vs {tuple(b.shape)}")
        if not a.is_floating_point() or a.numel() == 0:
            continue
        key_a, key_b = _storage(a), _storage(b)
        if key_a in owners_a and owners_b.get(key_b) == owners_a[key_a]:
            continue  # tied to an earlier tensor in both states
        owners_a.setdefault(key_a, name)
        owners_b.setdefault(key_b, name)
        diff = a.detach().cpu().double() - b.detach().cpu().double()
        match = _BLOCK.match(name)
        layer, kind = (int(match[1]), match[2]) if match else (-1, name)
        value = float(diff.norm() / math.sqrt(a.numel()))
        rows.append({"tensor": name, "layer": layer, "kind": kind, "value": value})
    return pd.DataFrame(rows, columns=["tensor", "layer", "kind", "value"])
