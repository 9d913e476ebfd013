"""Train a quadratic Bezier curve between two models; loss along it and the line (Snakemake)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import pandas as pd

from lmlerp import atomic, checkpoints, curves, training

p, i, o = snakemake.params, snakemake.input, snakemake.output
training.deterministic(snakemake.threads)
c = p.curves
model1, model2, batches, evaluate, bpe = curves.pair_setup(
    snakemake.wildcards.pair, p.endpoints, pd.read_parquet(i.movie), p.data,
    c["batch_size"], p.max_length, c["seed"],
)  # fmt: skip
ts = curves.grid(p.data["path_points"])
table, history, phi = curves.bezier_vs_line(
    model1, model2, batches, evaluate, ts, c["steps"], c["lr"], c["seed"]
)
atomic.write_parquet(o.curves, table.assign(pair=snakemake.wildcards.pair))
atomic.write_parquet(o.history, history)
checkpoints.save(phi, bpe, o.phi)
