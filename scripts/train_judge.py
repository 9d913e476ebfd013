"""Train the 3-class sentiment judge; record its held-out accuracy.

The Snakemake `script:` of rule train_judge.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.score import tasks

tasks.train_judge(
    judge_data=i.judge_data, movie_table=i.movie, judge_dir=o.judge, metrics_json=o.metrics, **p
)
