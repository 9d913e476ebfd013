"""Text normalisation and deterministic, share-based splits shared by every data source."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Collapse whitespace and turn the `''` quote convention of both sources into `"`."""
    return _SPACES.sub(" ", text.replace("''", '"')).strip()


def assign_shares(sizes: Sequence[int], shares: Mapping[str, float], seed: int) -> list[str]:
    """Assign items to named splits so that each split's total size approaches its share.

    Items are visited in a seeded random order and each goes to the split furthest below its
    target (target − current, in size units). Deterministic for a given seed; splits are disjoint.
    """
    names = [name for name, share in shares.items() if share > 0]
    if not names:
        raise ValueError("every share is zero")
    total = float(sum(sizes))
    targets = np.array([shares[name] * total for name in names])
    filled = np.zeros(len(names))
    out = [""] * len(sizes)
    for i in np.random.default_rng(seed).permutation(len(sizes)):
        deficit = (targets - filled) / np.maximum(targets, 1e-12)
        k = int(np.argmax(deficit))
        out[i] = names[k]
        filled[k] += sizes[i]
    return out
