"""One tidy table per experiment (per point and prompt kind, with intervals) from its chunks.

The Snakemake `script:` of rule aggregate.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.evaluate import tasks

tasks.aggregate(points=i.points, samples=i.samples, table=o.table, trends=o.trends, **p)
