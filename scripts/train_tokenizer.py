"""Train the byte-level BPE shared by θ0 and θC4 on θ0's training corpus.

The Snakemake `script:` of rule train_tokenizer.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.data import tasks

tasks.train_tokenizer(corpus_table=i.corpus, tokenizer_dir=o.tokenizer, **p)
