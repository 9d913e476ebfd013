"""Draw the paper's Figs 3–10 from the aggregated tables.

The Snakemake `script:` of rule plot.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.report import tasks

tasks.plot(inputs=dict(i.items()), figures_out=dict(o.items()), **p)
