"""C4 shards as GPT-C4's pretraining corpus, split into train / val (Snakemake)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from lmlerp import atomic, paper_data

p = snakemake.params
corpus = paper_data.c4_corpus(snakemake.input.c4, p.val_fraction, p.seed)
atomic.write_parquet(snakemake.output.corpus, corpus)
