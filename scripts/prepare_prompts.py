"""Cut prompts from held-out text after 4–10 tokens, plus the fixed prompts (Snakemake)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import numpy as np
import pandas as pd

from lmlerp import atomic, failure, prompts, tokenizer

failure.install(snakemake.rule)

p = snakemake.params.prompts
bpe = tokenizer.load(snakemake.input.tokenizer)
table = prompts.build(
    pd.read_parquet(snakemake.input.corpus),
    pd.read_parquet(snakemake.input.movie),
    bpe,
    p,
    np.random.default_rng(snakemake.params.seed),
)
atomic.write_parquet(snakemake.output.prompts, table)
