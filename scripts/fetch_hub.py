"""Fetch one hub model or dataset (or its local stand-in) into resources/hub/ (Snakemake)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from lmlerp import hub

p = snakemake.params
if not hub.is_pinned(p.source):
    print(f"warning: {hub.describe(p.source)} is not pinned to a commit", file=sys.stderr)
manifest = hub.fetch(
    p.source,
    snakemake.output[0],
    repo_type=p.repo_type,
    files=p.source.get("files"),
    offline_mode=p.offline,
)
print(f"fetched {hub.describe(p.source)}: {len(manifest['files'])} files", file=sys.stderr)
