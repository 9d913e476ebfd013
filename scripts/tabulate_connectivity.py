"""Barriers of every model in one table; metric × model tables for loss and error (Snakemake)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import pandas as pd

from lmlerp import atomic, lmc

o = snakemake.output
frames = [
    pd.read_parquet(path).assign(model=name)
    for name, path in zip(snakemake.params.models, snakemake.input.barriers, strict=True)
]
table = pd.concat(frames, ignore_index=True)
atomic.write_parquet(o.barriers, table)
atomic.write_tsv(o.loss, lmc.report_table(table, "loss"))
atomic.write_tsv(o.error, lmc.report_table(table, "error"))
