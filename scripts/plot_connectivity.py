"""Barriers against fine-tuning step; Bezier curves against lines.

The Snakemake `script:` of rule plot_connectivity.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.report import tasks

tasks.plot_connectivity(
    barriers=i.barriers, curves=i.curves, steps=o.steps, curves_figure=o.curves, **p
)
