"""Fine-tune a classifier from a pretrained model once per seed.

The Snakemake `script:` of rule finetune_classifier.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.connectivity import tasks

tasks.finetune_classifiers(
    base=i.base, movie=i.movie, checkpoints_dir=o.checkpoints, loss_table=o.loss,
    data_record=o.data,
    threads=snakemake.threads,
    code=snakemake.params.code, **p,
)  # fmt: skip
