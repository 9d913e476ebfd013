"""Train the byte-level BPE shared by θ0 and θC4 on θ0's training corpus (Snakemake)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import pandas as pd

from lmlerp import failure, tokenizer

failure.install(snakemake.rule)

corpus = pd.read_parquet(snakemake.input.corpus)
texts = corpus[(corpus.corpus == "theta0") & (corpus.split == "train")].text
bpe = tokenizer.train(texts, **snakemake.params.settings)
tokenizer.save(bpe, snakemake.output.tokenizer)
