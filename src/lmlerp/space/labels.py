"""Clean, lossless spellings of numbers used in file paths and candidate names.

One helper produces every coordinate that appears in a path, so that 0.1 + 0.2 never becomes a
directory called `0.30000000000000004` (DESIGN §2).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence


def number(x: float | int) -> str:
    """Clean decimal spelling, 12 significant digits: 0.0003 → '0.0003', 2.0 → '2',
    0.1 + 0.2 → '0.3', -4 / 2.5 → '-1.6', 1e-05 → '1e-05'."""
    if isinstance(x, bool):
        raise TypeError("a boolean is not a coordinate")
    text = format(float(x), ".12g")
    return "0" if text == "-0" else text


def candidate(lr: float, batch_size: int, steps: int) -> str:
    """Name of one fine-tuning grid candidate, e.g. 'lr0.0003_bs16_steps150'."""
    return f"lr{number(lr)}_bs{batch_size}_steps{steps}"


def candidates(
    lrs: Sequence[float], batch_sizes: Sequence[int], steps: Sequence[int]
) -> dict[str, dict[str, float | int]]:
    """The fine-tuning grid lr × batch × steps, keyed by candidate name, in config order.

    Raises ValueError if two grid points share a name (values equal to 12 significant digits).
    """
    grid: dict[str, dict[str, float | int]] = {}
    for lr, batch_size, n in itertools.product(lrs, batch_sizes, steps):
        name = candidate(lr, batch_size, n)
        if name in grid:
            raise ValueError(f"duplicate fine-tuning candidate '{name}' in config key 'finetune'")
        grid[name] = {"lr": lr, "batch_size": batch_size, "steps": n}
    return grid
