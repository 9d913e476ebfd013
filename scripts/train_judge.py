"""Train the 3-class sentiment judge and record its held-out accuracy on movie sentences."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import pandas as pd

from lmlerp import atomic, failure, judge

failure.install(snakemake.rule)

table = pd.read_parquet(snakemake.input.judge_data)
train = table[table.split == "train"]
model = judge.train(train.text.tolist(), train.label.tolist(), **snakemake.params.settings)
model.save(snakemake.output.judge)
movie = pd.read_parquet(snakemake.input.movie)
atomic.write_json(snakemake.output.metrics, judge.evaluate(model, table, movie))
