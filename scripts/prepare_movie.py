"""Split the rated movie sentences into judge / train / val / test / prompt sets (Snakemake)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path

from lmlerp import atomic, data, failure

failure.install(snakemake.rule)

movie = data.read_rated(Path(snakemake.input.vader) / "movie.tsv", "movie")
p = snakemake.params
table = data.split_movie(movie, p.splits, p.threshold, p.seed)
atomic.write_parquet(snakemake.output.movie, table)
