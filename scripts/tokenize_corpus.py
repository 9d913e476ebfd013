"""Tokenise one corpus's train and val documents into memory-mappable token files.

The Snakemake `script:` of rule tokenize_corpus.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.data import tasks

tasks.tokenize_corpus(
    corpus_table=i.corpus, tokenizer=i.tokenizer, train_tokens=o.train, val_tokens=o.val, **p
)
