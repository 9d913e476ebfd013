"""Pretrain θ0's recipe at another step budget: a second model size.

The Snakemake `script:` of rule pretrain_budget.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.train import tasks

tasks.pretrain_model(
    train_tokens=i.train, val_tokens=i.val, tokenizer=i.tokenizer, model_dir=o.model,
    metrics_json=o.metrics, loss_table=None, threads=snakemake.threads,
    code=snakemake.params.code, **p,
)  # fmt: skip
