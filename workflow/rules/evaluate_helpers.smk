# Grids, wildcard constraints and input/params functions of the rules in evaluate.smk.
from lmlerp.space import paths


def family_coordinates(family):
    """The explicit coordinate lists of a path family (or of the DExperts α grid)."""
    if family == paths.DEXPERTS:
        return {"alpha": config["dexperts"]["alpha"]}
    return config["paths"][family]


FAMILIES = [*config["paths"], paths.DEXPERTS]
CHUNKS = {
    family: paths.chunks(
        paths.family_points(family, family_coordinates(family)),
        config["evaluation"]["points_per_job"],
    )
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
    names = set(paths.FAMILY_BASES[wildcards.family]) | {"theta0"}
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
    return list(paths.FAMILY_BASES[wildcards.family])


def chunk_outputs(wildcards, output="points"):
    """The chunk tables of one family: their points (default) or their samples."""
    return expand(
        getattr(rules.evaluate.output, output),
        family=wildcards.family,
        chunk=CHUNKS[wildcards.family],
    )


def chunk_samples(wildcards):
    return chunk_outputs(wildcards, "samples")
