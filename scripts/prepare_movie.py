"""Split the rated movie sentences into judge / train / val / test / prompt sets.

The Snakemake `script:` of rule prepare_movie.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.data import tasks

tasks.prepare_movie(vader=i.vader, movie_table=o.movie, **p)
