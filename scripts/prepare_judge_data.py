"""Label sentences for the 3-class sentiment judge from their mean rating (Snakemake)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path

import pandas as pd

from lmlerp import atomic, data, failure

failure.install(snakemake.rule)

p = snakemake.params
vader = Path(snakemake.input.vader)
others = [data.read_rated(vader / f"{d}.tsv", d) for d in p.other_domains if d in p.domains]
table = data.judge_data(
    pd.read_parquet(snakemake.input.movie),
    others,
    p.neutral_band,
    p.test_fraction,
    p.seed,
    use_movie="movie" in p.domains,
)
atomic.write_parquet(snakemake.output.judge_data, table)
