"""Barriers of every model in one table; metric × model tables; the data records.

The Snakemake `script:` of rule tabulate_connectivity.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.connectivity import tasks

tasks.tabulate(barriers=i.barriers, data=i.data, outputs=dict(o.items()), **p)
