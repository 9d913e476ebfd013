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
LMC = config["connectivity"]
LMC_SIZES = list(LMC["models"])
LMC_METHODS = {size: ["full"] for size in LMC_SIZES} | {
    LMC["curves"]["model"]: ["full", "lora"]
}
LMC_BUDGETS = sorted(
    {
        source["pretrain_steps"]
        for source in LMC["models"].values()
        if source.get("pretrain_steps", config["pretrain"]["steps"])
        != config["pretrain"]["steps"]
    }
)
LMC_HUB = {size: m["source"] for size, m in LMC["models"].items() if "source" in m}
CURVE_PAIRS = ["seeds_full", "seeds_lora", "theta_pos_neg"]


wildcard_constraints:
    asset="|".join(config["assets"]),
    model="|".join(PRETRAINED),
    sentiment="|".join(SENTIMENTS),
    candidate="|".join(map(re.escape, CANDIDATES)),
    family="|".join(FAMILIES),
    chunk=r"c\d+",
    size="|".join(map(re.escape, LMC_SIZES)),
    method="full|lora",
    steps=r"\d+",
    pair="|".join(CURVE_PAIRS),


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
        *CONNECTIVITY_FIGURES,
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
        *expand("benchmarks/fetch_encoder/{size}.tsv", size=LMC_HUB),
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
        *expand("benchmarks/pretrain_budget/steps{steps}.tsv", steps=LMC_BUDGETS),
        *(
            f"benchmarks/finetune_classifier/{size}/{method}.tsv"
            for size, methods in LMC_METHODS.items()
            for method in methods
        ),
        *(
            f"benchmarks/connect/{size}/{method}.tsv"
            for size, methods in LMC_METHODS.items()
            for method in methods
        ),
        *expand("benchmarks/bezier/{pair}.tsv", pair=CURVE_PAIRS),
        "benchmarks/tabulate_connectivity/tables.tsv",
        "benchmarks/plot_connectivity/figures.tsv",
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


# --- mode connectivity -----------------------------------------------------------------------

CONNECTIVITY_FIGURES = [
    "results/figures/connectivity_steps.png",
    "results/figures/connectivity_curves.png",
]


def pretrained_source(size):
    """Where model `size` of connectivity.models comes from: θ0 itself when its pretraining budget
    equals pretrain.steps, the θ0 recipe re-run at a smaller budget otherwise, or a hub source
    fetched into resources/hub/connectivity/ (rule fetch_encoder).
    """
    source = LMC["models"][size]
    if "source" in source:
        return f"resources/hub/connectivity/{size}"
    if source["pretrain_steps"] == config["pretrain"]["steps"]:
        return MODELS["theta0"]
    return f"results/connectivity/pretrained/steps{source['pretrain_steps']}"


def classifier_inputs(wildcards):
    """The pretrained checkpoint (when it is built by this workflow) and the movie data."""
    return {
        "base": pretrained_source(wildcards.size),
        "movie": "results/prepare/movie.parquet",
    }


def classifier_source(wildcards):
    return pretrained_source(wildcards.size)


def budget_hyperparameters(wildcards):
    """θ0's pretraining settings at a smaller step budget, warmup scaled by the same share."""
    hp = pretrain_hyperparameters()
    steps = int(wildcards.steps)
    warmup = round(hp["warmup_steps"] * steps / hp["steps"])
    return canonical({**hp, "steps": steps, "warmup_steps": min(warmup, steps - 1)})


def task_settings():
    """The classification task and its data split (the same for every seed)."""
    return canonical({"task": LMC["task"], "glue": LMC["glue"], "seed": config["seed"]})


def lmc_settings():
    """Task plus held-out evaluation settings, for the rules that walk paths."""
    keys = ("path_points", "eval_examples", "eval_batch_size")
    return canonical({**task_settings(), **{k: LMC[k] for k in keys}})


def curve_endpoints(wildcards):
    """What a curve's endpoints come from: θ± themselves, or the seeds' checkpoint directory."""
    if wildcards.pair == "theta_pos_neg":
        return {
            "theta1": "results/models/theta_pos",
            "theta2": "results/models/theta_neg",
        }
    method = wildcards.pair.split("_", 1)[1]
    size = LMC["curves"]["model"]
    return {"checkpoints": f"results/connectivity/finetune/{size}/{method}/checkpoints"}


def curve_endpoint_paths(wildcards):
    """The two endpoint directories of a curve: θ+ and θ−, or the two seeds' checkpoints."""
    inputs = curve_endpoints(wildcards)
    if "checkpoints" not in inputs:
        return [inputs["theta1"], inputs["theta2"]]
    return [f"{inputs['checkpoints']}/seed{seed}" for seed in LMC["seeds"]]


def lmc_barrier_tables():
    return [
        f"results/connectivity/lmc/{size}/{method}/barriers.parquet"
        for size, methods in LMC_METHODS.items()
        for method in methods
    ]


def lmc_curve_tables():
    return expand("results/connectivity/bezier/{pair}/curves.parquet", pair=CURVE_PAIRS)


def lmc_model_labels():
    """Column names of the tables: the model name, with ' (LoRA)' for adapter fine-tuning."""
    return [
        size if method == "full" else f"{size} (LoRA)"
        for size, methods in LMC_METHODS.items()
        for method in methods
    ]
