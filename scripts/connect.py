"""Loss and accuracy along the line between two seeds at every checkpoint.

The Snakemake `script:` of rule connect.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.connectivity import tasks

tasks.connect(
    checkpoints_dir=i.checkpoints, movie=i.movie, curves_table=o.curves,
    barriers_table=o.barriers, threads=snakemake.threads, **p,
)  # fmt: skip
