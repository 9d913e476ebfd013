# Grids, wildcard constraints and input/params functions of the rules in evaluate.smk.
from lmlerp.space import families, mergekit_yaml, paths


def family_coordinates(family):
    """The explicit coordinate lists of a path family (or of the DExperts α grid)."""
    if family == paths.DEXPERTS:
        return {"alpha": config["dexperts"]["alpha"]}
    return config["paths"][family]


# Merge-method families (paths.merges): resolved once here, a mergekit YAML read and translated,
# so that its content reaches the evaluate jobs through params (an edit re-runs them).
MERGES = {
    name: families.resolve(name, entry, mergekit_yaml.read)
    for name, entry in config["paths"].get("merges", {}).items()
}
BUILTIN = [family for family in config["paths"] if family != "merges"]
FAMILIES = [*BUILTIN, *MERGES, paths.DEXPERTS]


def family_grid(family):
    """The points (label, coordinates) of any family, in config order."""
    if family in MERGES:
        return families.family_points(MERGES[family])
    return paths.family_points(family, family_coordinates(family))


CHUNKS = {
    family: paths.chunks(family_grid(family), config["evaluation"]["points_per_job"])
    for family in FAMILIES
}
# The model directory each scorer kind reads, where this workflow builds or fetches it.
SCORER_MODELS = {
    "sentiment": {"tfidf": "results/judge", "transformers": "resources/hub/sentiment"},
    "grammar": {"transformers": "resources/hub/grammar"},
    "judge_lm": {
        "smollm2": "results/models/judge_lm",
        "transformers": "resources/hub/judge_lm",
    },
}


wildcard_constraints:
    family="|".join(FAMILIES),
    chunk="|".join(sorted({chunk for family in FAMILIES for chunk in CHUNKS[family]})),


def chunk_points(wildcards):
    """The points (label and coordinates) evaluated by one chunk job."""
    return CHUNKS[wildcards.family][wildcards.chunk]


def evaluation_inputs(wildcards):
    """The bases of the chunk's family (θ0 always, for its tokenizer) as named inputs.

    In the decorrelated family the base named theta0 is REFERENCE (θ0 itself by default); the
    recipes record the directory, so the substitution is visible in every result.
    """
    names = set(base_names(wildcards)) | {"theta0"}
    dirs = {name: MODELS[name] for name in sorted(names)}
    if wildcards.family == "decorrelated":
        dirs["theta0"] = REFERENCE
    return dirs


def scorer_inputs(wildcards):
    """The model directory of each configured scorer as a named input (none for harper)."""
    kinds = {score: config["scorers"][score] for score in SCORER_MODELS}
    return {
        score: SCORER_MODELS[score][kind]
        for score, kind in kinds.items()
        if kind in SCORER_MODELS[score]
    }


def sampling_settings(wildcards):
    """The generation settings of the chunk's family: DExperts samples its ensemble with its own
    `dexperts.top_p` (1.0, as the DExperts code), the weight-space families with
    `generation.top_p`."""
    sampling = canonical(config["generation"])
    if wildcards.family == paths.DEXPERTS:
        sampling["top_p"] = config["dexperts"]["top_p"]
    return sampling


def base_names(wildcards):
    """The bases the chunk's family reads (a merge family: every base any of its points uses)."""
    if wildcards.family in MERGES:
        return families.family_bases(MERGES[wildcards.family])
    return list(paths.FAMILY_BASES[wildcards.family])


def merge_spec(wildcards):
    """A merge family's resolved spec (its mergekit YAML included), None for the others."""
    return canonical(MERGES[wildcards.family]) if wildcards.family in MERGES else None


def chunk_outputs(wildcards, output="points"):
    """The chunk tables of one family: their points (default) or their samples."""
    return expand(
        getattr(rules.evaluate.output, output),
        family=wildcards.family,
        chunk=CHUNKS[wildcards.family],
    )


def chunk_samples(wildcards):
    return chunk_outputs(wildcards, "samples")
