"""The job of the weight space itself: how far apart the bases are, tensor by tensor (Fig 9)."""

from __future__ import annotations

import os

import pandas as pd

from lmlerp.io import atomic, checkpoints
from lmlerp.space.norms import weight_difference_norms

PathLike = str | os.PathLike


def weight_norms(
    *,
    theta0: PathLike,
    theta_pos: PathLike,
    reference: PathLike,
    theta_c4: PathLike,
    norms: PathLike,
    reference_name: str,
) -> None:
    """Per-tensor RMS differences of θ+ vs θ0 and of the decorrelated pair (paper Fig 9)."""
    paths = {"theta0": theta0, "theta_pos": theta_pos, "reference": reference, "theta_c4": theta_c4}
    state = {name: checkpoints.load(path).state_dict() for name, path in paths.items()}
    pairs = [
        ("θ+ vs θ0", "theta_pos", "theta0"),
        (f"{reference_name} vs θC4", "reference", "theta_c4"),
    ]
    table = pd.concat(
        [weight_difference_norms(state[a], state[b]).assign(pair=pair) for pair, a, b in pairs],
        ignore_index=True,
    )
    atomic.write_parquet(norms, table)
