"""Learning-rate multipliers of the training runs: warmup, then cosine, linear or polynomial decay.

Each is a pure function of the step, for `torch.optim.lr_scheduler.LambdaLR`.
"""

from __future__ import annotations

import math


def cosine_schedule(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """lr multiplier: (step+1)/warmup during warmup, then min + (1−min)·½(1 + cos(π·progress))."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def linear_schedule(step: int, warmup: int, total: int) -> float:
    """lr multiplier: linear warmup, then linear decay to 0 at `total` (HF Trainer default)."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def polynomial_schedule(
    step: int, warmup: int, total: int, power: float, end_ratio: float
) -> float:
    """lr multiplier: linear warmup, then end + (1 − end)·(1 − progress)^power (HF's
    `get_polynomial_decay_schedule_with_warmup`; power 1 and end 0 give `linear_schedule`)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return end_ratio + (1 - end_ratio) * (1 - progress) ** power
