# Config validation (before any job runs), grid construction and named input helpers.
import re

from lmlerp import config as lmlerp_config
from lmlerp import hub, labels, paths, scorers

lmlerp_config.validate(config)


onstart:
    # Only here is the executor known: a local run must see the configured CUDA device, a cluster
    # head node need not (its jobs land on GPU nodes). Runs before any job, not on a dry run.
    if workflow.local_exec:
        lmlerp_config.check_device(config["device"])


HUB = config.get("hub", {})  # paper scale: inputs from the hub (workflow/rules/hub.smk)
HUB_MODELS = HUB.get("models", {})
HUB_DATASETS = HUB.get("datasets", {})
PRETRAINED = [name for name in ("theta0", "theta_c4") if name not in HUB_MODELS]
MODELS = {
    "theta0": (
        "resources/hub/theta0" if "theta0" in HUB_MODELS else "results/models/theta0"
    ),
    "theta_pos": "results/models/theta_pos",
    "theta_neg": "results/models/theta_neg",
    "theta_c4": "results/models/theta_c4",
}
# The decorrelated pair's first base: θ0, or the paper's DistilGPT-2 (hub.models.reference).
REFERENCE = "resources/hub/reference" if "reference" in HUB_MODELS else MODELS["theta0"]
# A hub θ0 brings its tokenizer (GPT-2's BPE); otherwise one is trained on the corpus.
TOKENIZER = MODELS["theta0"] if "theta0" in HUB_MODELS else "results/tokenizer"
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


TRAINED_JUDGE = config["scorers"]["sentiment"] == "tfidf"  # TF-IDF judge trained here
CONVERTED_JUDGE_LM = config["scorers"]["judge_lm"] == "smollm2"  # GGUF converted here


def needed_assets():
    """The offline assets this config's DAG reads (none at paper scale)."""
    needed = {
        "vader": "movie" not in HUB_DATASETS or TRAINED_JUDGE,
        "gensim": "corpus" not in HUB_DATASETS,
        "smollm2": CONVERTED_JUDGE_LM,
    }
    return [asset for asset, wanted in needed.items() if wanted]


def summary_inputs():
    """The judges' records that summary.json quotes, where this config builds them."""
    inputs = {"judge_metrics": "results/judge_metrics.json"} if TRAINED_JUDGE else {}
    if CONVERTED_JUDGE_LM:
        inputs["judge_lm"] = "results/models/judge_lm"
    return inputs


def provenance():
    """Where each base and judge comes from, for summary.json: built here or a hub source."""
    here = {
        "theta0": "pretrained here",
        "reference": "θ0",
        "sentiment": "TF-IDF judge trained here",
        "grammar": "Harper",
        "judge_lm": "SmolLM2-135M (GGUF converted here)",
    }
    return {
        name: hub.describe(HUB_MODELS[name]) if name in HUB_MODELS else built
        for name, built in here.items()
    }


def final_outputs():
    return [
        "results/summary.json",
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
    files = [
        *expand("benchmarks/download/{asset}.tsv", asset=needed_assets()),
        *expand("benchmarks/fetch_model/{name}.tsv", name=HUB_MODELS),
        *expand("benchmarks/fetch_dataset/{dataset}.tsv", dataset=HUB_DATASETS),
        *expand("benchmarks/fetch_prompts/{kind}.tsv", kind=HUB.get("prompts", {})),
        "benchmarks/prepare_movie/movie.tsv",
        "benchmarks/prepare_corpus/corpus.tsv",
        "benchmarks/prepare_prompts/prompts.tsv",
        *expand("benchmarks/pretrain/{model}.tsv", model=PRETRAINED),
        *expand(
            "benchmarks/finetune/{sentiment}/{candidate}.tsv",
            sentiment=SENTIMENTS,
            candidate=CANDIDATES,
        ),
        *expand("benchmarks/select_finetune/{sentiment}.tsv", sentiment=SENTIMENTS),
        *(
            f"benchmarks/evaluate/{family}/{chunk}.tsv"
            for family in FAMILIES
            for chunk in CHUNKS[family]
        ),
        *expand("benchmarks/aggregate/{family}.tsv", family=FAMILIES),
        "benchmarks/weight_norms/weight_norms.tsv",
        "benchmarks/plot/figures.tsv",
    ]
    if TOKENIZER == "results/tokenizer":
        files.append("benchmarks/train_tokenizer/tokenizer.tsv")
    if TRAINED_JUDGE:
        files += [
            "benchmarks/prepare_judge_data/judge_data.tsv",
            "benchmarks/train_judge/judge.tsv",
        ]
    if CONVERTED_JUDGE_LM:
        files.append("benchmarks/convert_judge_lm/judge_lm.tsv")
    return files


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
