"""One tidy table per experiment: every point of a family, sorted by its coordinates."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import pandas as pd

from lmlerp import atomic, failure

failure.install(snakemake.rule)

table = pd.concat(map(atomic.read_parquet, snakemake.input.points), ignore_index=True)
atomic.write_parquet(snakemake.output.table, table.sort_values(["alpha", "beta"]))
