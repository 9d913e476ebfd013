"""Split Wikipedia + Lee news into disjoint corpora for θ0, θC4 and held-out prompts (Snakemake)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path

from lmlerp import atomic, data, failure

failure.install(snakemake.rule)

p = snakemake.params
gensim = Path(snakemake.input.gensim)
corpus = data.build_corpus(
    gensim / "enwiki.xml.bz2", gensim / "lee_background.cor", p.splits, p.val_fraction, p.seed
)
atomic.write_parquet(snakemake.output.corpus, corpus)
