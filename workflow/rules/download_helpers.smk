# Grids, wildcard constraints and input/params functions of the rules in download.smk.
wildcard_constraints:
    asset="|".join(config["assets"]),


def asset_settings(wildcards):
    """This asset's pinned requirement, sha256 and members (a params function: edits re-run)."""
    return canonical(config["assets"][wildcards.asset])
