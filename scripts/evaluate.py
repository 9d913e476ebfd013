"""Evaluate one chunk of path points: rebuild, sample, score.

The Snakemake `script:` of rule evaluate.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.evaluate import tasks

tasks.evaluate(
    inputs=dict(i.items()), samples=o.samples, points=o.points, recipes=o.recipes,
    threads=snakemake.threads, code=snakemake.params.code, **p,
)  # fmt: skip
