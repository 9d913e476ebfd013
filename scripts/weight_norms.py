"""Per-tensor weight-difference norms for θ+ vs θ0 and the decorrelated pair (paper Fig 9)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import pandas as pd

from lmlerp import atomic, checkpoints, failure, metrics

failure.install(snakemake.rule)

names = ("theta0", "theta_pos", "reference", "theta_c4")
state = {name: checkpoints.load(snakemake.input[name]).state_dict() for name in names}
pairs = [
    ("θ+ vs θ0", "theta_pos", "theta0"),
    (f"{snakemake.params.reference} vs θC4", "reference", "theta_c4"),
]
table = pd.concat(
    [metrics.weight_difference_norms(state[a], state[b]).assign(pair=pair) for pair, a, b in pairs],
    ignore_index=True,
)
atomic.write_parquet(snakemake.output.norms, table)
