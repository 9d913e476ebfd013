"""SST-5 as the movie table: {0,1} negative, {3,4} positive, 2 neutral.

The Snakemake `script:` of rule prepare_movie.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.data import tasks

tasks.prepare_sst5(sst5=i.sst5, movie_table=o.movie, **p)
