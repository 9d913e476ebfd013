"""The job of the weight space itself: how far apart the bases are, tensor by tensor (Fig 9)."""

from __future__ import annotations

import os

import pandas as pd

from lmlerp.io import atomic, checkpoints
from lmlerp.space.norms import weight_difference_norms

PathLike = str | os.PathLike


def weight_norms(
    *,
    base: PathLike,
    tuned: PathLike,
    theta_c4: PathLike,
    norms: PathLike,
    base_name: str,
    tuned_name: str,
) -> None:
    """Per-tensor RMS differences of the paper's two Fig-9 pairs, which share one model size:
    (a) `base` vs `tuned`, the same model fine-tuned on positive text (θ0 vs θ+ when θ0 is the
    small model; DistilGPT-2 vs DistilGPT-2+ at paper scale), and (b) `base` vs θC4, two
    independent pretrainings of that architecture."""
    paths = {"base": base, "tuned": tuned, "theta_c4": theta_c4}
    state = {name: checkpoints.load(path).state_dict() for name, path in paths.items()}
    pairs = [
        (f"{base_name} vs {tuned_name} (fine-tuned on positive)", "base", "tuned"),
        (f"{base_name} vs θC4 (independent pretraining)", "base", "theta_c4"),
    ]
    table = pd.concat(
        [weight_difference_norms(state[a], state[b]).assign(pair=pair) for pair, a, b in pairs],
        ignore_index=True,
    )
    atomic.write_parquet(norms, table)
