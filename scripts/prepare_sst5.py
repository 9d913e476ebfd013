"""SST-5 as the movie table: {0,1} → negative, {3,4} → positive, 2 → neutral (Snakemake)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from lmlerp import atomic, paper_data

atomic.write_parquet(snakemake.output.movie, paper_data.sst5_movie(snakemake.input.sst5))
