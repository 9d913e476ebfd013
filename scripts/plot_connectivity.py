"""Barriers against fine-tuning step, and loss along Bezier curves vs lines (Snakemake)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import pandas as pd

from lmlerp import figures

i, o = snakemake.input, snakemake.output
figures.save(figures.connectivity_steps(pd.read_parquet(i.barriers)), o.steps)
curves = pd.concat(pd.read_parquet(path) for path in i.curves)
figures.save(figures.connectivity_curves(curves, snakemake.params.pairs), o.curves)
