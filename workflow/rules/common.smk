# Config validation (before any job runs), grid construction and named input helpers.
import re

from lmlerp import config as lmlerp_config
from lmlerp import labels, paths, scorers

lmlerp_config.validate(config)

PRETRAINED = ["theta0", "theta_c4"]
SENTIMENTS = {"pos": "positive", "neg": "negative"}
OTHER_DOMAINS = ["tweets", "amazon", "nyt"]
CANDIDATES = labels.candidates(
    config["finetune"]["lr"],
    config["finetune"]["batch_size"],
    config["finetune"]["steps"],
)
# A GPU rule's job asks for one GPU: a scheduling token locally (`--resources gpu=N` runs N at
# once, each claiming its own device in lmlerp.devices), `--gpus=1` on SLURM.
GPUS = 1 if config["device"].startswith("cuda") else 0


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


wildcard_constraints:
    asset="|".join(config["assets"]),
    model="|".join(PRETRAINED),
    sentiment="|".join(SENTIMENTS),
    candidate="|".join(map(re.escape, CANDIDATES)),
    family="|".join(FAMILIES),
    chunk=r"c\d+",


def canonical(value):
    """A params value with mapping keys sorted, recursively: Snakemake compares params by their
    text, so reordering keys in a YAML file must not look like a change and re-run jobs.
    """
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def finetune_hyperparameters():
    """Grid-independent fine-tuning settings shared by every candidate."""
    grid = ("lr", "batch_size", "steps")
    return canonical({k: v for k, v in config["finetune"].items() if k not in grid})


def candidate_metrics(wildcards):
    return expand(
        "results/finetune/{sentiment}/{candidate}/metrics.json",
        sentiment=wildcards.sentiment,
        candidate=CANDIDATES,
    )


def candidate_models(wildcards):
    return expand(
        "results/finetune/{sentiment}/{candidate}/model",
        sentiment=wildcards.sentiment,
        candidate=CANDIDATES,
    )


def final_outputs():
    return [
        "results/summary.json",
        "results/models/judge_lm",
        "results/prepare/prompts.parquet",
        "results/figures/fig03_g1.png",
    ]


def asset_settings(wildcards):
    """This asset's pinned requirement, sha256 and members (a params function: edits re-run)."""
    return canonical(config["assets"][wildcards.asset])


def pretrain_hyperparameters():
    """Pretraining settings shared by θ0 and θC4 (everything but the per-model seeds)."""
    return canonical({k: v for k, v in config["pretrain"].items() if k != "seeds"})


def pretrain_seed(wildcards):
    return config["pretrain"]["seeds"][wildcards.model]


def candidate_settings(wildcards):
    return canonical(CANDIDATES[wildcards.candidate])


def sentiment_name(wildcards):
    return SENTIMENTS[wildcards.sentiment]


def judge_settings():
    """Keyword arguments of `lmlerp.judge.train`."""
    keys = ("max_features", "ngram_max", "C")
    return canonical({**{k: config["judge"][k] for k in keys}, "seed": config["seed"]})


def benchmark_files():
    """The `benchmark:` files of every job in this config's DAG (stale ones are not counted)."""
    return [
        *expand("benchmarks/download/{asset}.tsv", asset=config["assets"]),
        "benchmarks/convert_judge_lm/judge_lm.tsv",
        "benchmarks/prepare_movie/movie.tsv",
        "benchmarks/prepare_corpus/corpus.tsv",
        "benchmarks/prepare_judge_data/judge_data.tsv",
        "benchmarks/train_tokenizer/tokenizer.tsv",
        "benchmarks/prepare_prompts/prompts.tsv",
        *expand("benchmarks/pretrain/{model}.tsv", model=PRETRAINED),
        *expand(
            "benchmarks/finetune/{sentiment}/{candidate}.tsv",
            sentiment=SENTIMENTS,
            candidate=CANDIDATES,
        ),
        *expand("benchmarks/select_finetune/{sentiment}.tsv", sentiment=SENTIMENTS),
        "benchmarks/train_judge/judge.tsv",
        *(
            f"benchmarks/evaluate/{family}/{chunk}.tsv"
            for family in FAMILIES
            for chunk in CHUNKS[family]
        ),
        *expand("benchmarks/aggregate/{family}.tsv", family=FAMILIES),
        "benchmarks/weight_norms/weight_norms.tsv",
        "benchmarks/plot/figures.tsv",
    ]


def chunk_points(wildcards):
    """The points (label and coordinates) evaluated by one chunk job."""
    return CHUNKS[wildcards.family][wildcards.chunk]


def evaluation_inputs(wildcards):
    """The bases of the chunk's family (θ0 always, for its tokenizer) as named inputs."""
    names = set(paths.FAMILY_BASES[wildcards.family]) | {"theta0"}
    return {name: f"results/models/{name}" for name in sorted(names)}


def base_names(wildcards):
    return list(paths.FAMILY_BASES[wildcards.family])


def chunk_outputs(wildcards):
    return expand(
        "results/evaluate/{family}/{chunk}/points.parquet",
        family=wildcards.family,
        chunk=CHUNKS[wildcards.family],
    )


def job_memory(rule):
    """`mem_mb` of one job of a GPU rule, from config `resources:` (a profile may override it)."""
    return config["resources"][rule]["mem_mb"]


def job_runtime(rule):
    """`runtime` (minutes) of one job of a GPU rule, from config `resources:`."""
    return config["resources"][rule]["runtime"]


def scorer_inputs(wildcards):
    """The model directory of each configured scorer as a named input (none for harper)."""
    return scorers.input_paths(config["scorers"])
