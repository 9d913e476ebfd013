"""Fine-tune θ0 on positive or negative sentences with one grid candidate.

The Snakemake `script:` of rule finetune.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.train import tasks

tasks.finetune_candidate(
    theta0=i.theta0, movie=i.movie, model_dir=o.model, loss_table=o.loss,
    metrics_json=o.metrics, threads=snakemake.threads,
    code=snakemake.params.code, **p,
)  # fmt: skip
