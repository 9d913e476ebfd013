"""Sample the DExperts sentiment prompts (already cut prefixes) plus the fixed ones (Snakemake)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import numpy as np

from lmlerp import atomic, paper_data, tokenizer

files = {kind: snakemake.input[kind] for kind in paper_data.PROMPT_KINDS}
table = paper_data.dexperts_prompts(
    files,
    snakemake.params.prompts,
    tokenizer.load(snakemake.input.tokenizer),
    np.random.default_rng(snakemake.params.seed),
)
atomic.write_parquet(snakemake.output.prompts, table)
