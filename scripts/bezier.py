"""Train a quadratic Bezier curve between two models; loss along it.

The Snakemake `script:` of rule bezier.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.connectivity import tasks

tasks.bezier(
    inputs=dict(i.items()), curves_table=o.curves, history_table=o.history, phi_dir=o.phi,
    threads=snakemake.threads, **p,
)  # fmt: skip
