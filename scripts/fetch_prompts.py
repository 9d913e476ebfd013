"""Fetch one DExperts prompt file from a URL or a local path, checking its sha256 (Snakemake)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from lmlerp import hub

p = snakemake.params.prompt_file
digest = hub.fetch_file(
    p["location"], snakemake.output.prompts, p.get("sha256"), snakemake.params.offline
)
print(f"fetched {p['location']} (sha256 {digest})", file=sys.stderr)
