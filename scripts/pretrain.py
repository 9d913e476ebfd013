"""Pretrain θ0 or θC4 from scratch on its own corpus.

The Snakemake `script:` of rule pretrain.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.train import tasks

tasks.pretrain_model(
    train_tokens=i.train, val_tokens=i.val, tokenizer=i.tokenizer, model_dir=o.model,
    metrics_json=o.metrics, loss_table=o.loss, threads=snakemake.threads,
    code=snakemake.params.code, **p,
)  # fmt: skip
