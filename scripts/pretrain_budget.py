"""Pretrain θ0's recipe at a smaller step budget: a second "model size" (Snakemake)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import pandas as pd

from lmlerp import atomic, checkpoints, pretraining, tokenizer, training

p = snakemake.params
training.deterministic(snakemake.threads)
bpe = tokenizer.load(snakemake.input.tokenizer)
corpus = pd.read_parquet(snakemake.input.corpus)
model, _, metrics = pretraining.run(corpus, "theta0", bpe, p.arch, p.hp, p.seed, p.device, p.dtype)
atomic.write_json(snakemake.output.metrics, metrics)
checkpoints.save(model, bpe, snakemake.output.model)
