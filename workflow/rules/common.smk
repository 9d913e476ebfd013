# Config validation (before any job runs), the path table of the bases, shared helpers and the
# targets. Each stage's own grids and helpers live beside its rules (workflow/rules/<stage>.smk).
# Nothing here imports torch: parsing the Snakefile stays cheap (bench/noop.py measures it).
from pathlib import Path

from lmlerp import config as lmlerp_config
from lmlerp.jobs.code import code as code_fingerprint

# A config that passed once is remembered by its fingerprint (content, schema, check code).
lmlerp_config.validate(config, cache=".snakemake/lmlerp/valid-configs")


onstart:
    # Only here is the executor known: a local run must see the configured CUDA device, a cluster
    # head node need not (its jobs land on GPU nodes). Runs before any job, not on a dry run.
    if workflow.local_exec:
        lmlerp_config.check_device(config["device"])


# --- the path table: where every base model and the shared tokenizer come from -------------
HUB = config.get("hub", {})  # paper scale: inputs from the hub (workflow/rules/hub.smk)
HUB_MODELS = HUB.get("models", {})
HUB_DATASETS = HUB.get("datasets", {})
# The LMs pretrained from scratch: θ0 unless it comes from the hub, θC4 for paths.decorrelated.
PRETRAINED = lmlerp_config.pretrained_here(config)
# The optional parts: the θ0 ↔ θC4 pair (Figs 9, 10) and mode connectivity (connectivity.smk).
DECORRELATED = lmlerp_config.decorrelated(config)
CONNECTIVITY = "connectivity" in config
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
# Fig 9 (a) fine-tunes the reference on positive text: θ+ itself where θ0 is the reference, at
# paper scale DistilGPT-2 fine-tuned with θ+'s recipe (rule finetune_reference).
REFERENCE_POS = (
    MODELS["theta_pos"]
    if REFERENCE == MODELS["theta0"]
    else "results/models/reference_pos"
)
# A hub θ0 brings its tokenizer (GPT-2's BPE); otherwise one is trained on the corpus.
TOKENIZER = MODELS["theta0"] if "theta0" in HUB_MODELS else "results/tokenizer"
SENTIMENTS = {"pos": "positive", "neg": "negative"}
# A GPU rule's job asks for one GPU: a scheduling token locally (`--resources gpu=N` runs N at
# once, each claiming its own device in lmlerp.jobs.devices), `--gpus=1` on SLURM.
GPUS = 1 if config["device"].startswith("cuda") else 0


wildcard_constraints:
    sentiment="|".join(SENTIMENTS),
    model="|".join(PRETRAINED) or "^$",


def canonical(value):
    """A params value with mapping keys sorted, recursively: Snakemake compares params by their
    text, so reordering keys in a YAML file must not look like a change and re-run jobs.
    """
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def code(script):
    """The code fingerprint of a rule's script (lmlerp.jobs.code), passed as `params: code=`:
    editing the script or any lmlerp module it imports re-runs the rule's jobs, a docstring or
    comment does not. `script` is relative to the repository root (the Snakefile's directory).
    """
    return code_fingerprint(Path(workflow.basedir) / script)


def rule_resources(rule):
    """Config `resources:` of one rule's jobs, its own entry or `default` (a profile may override)."""
    return config["resources"].get(rule, config["resources"]["default"])


def job_memory(rule):
    """`mem_mb` of one job of `rule`, from config `resources:`."""
    return rule_resources(rule)["mem_mb"]


def job_runtime(rule):
    """`runtime` (minutes) of one job of `rule`, from config `resources:`."""
    return rule_resources(rule)["runtime"]


def figure(name, caption, category="Figures"):
    """A figure's PNG under results/figures/, in the report with its caption."""
    return report(f"results/figures/{name}.png", caption=caption, category=category)


def final_outputs():
    """The targets of the default run: the summary, the prompts, every figure this config draws
    (Fig 11 where an LM is pretrained here, the connectivity figures with that part)."""
    return [
        rules.summarize.output.summary,
        rules.prepare_prompts.output.prompts,
        *rules.plot.output,
        *(rules.plot_pretraining.output if PRETRAINED else []),
        *(rules.plot_connectivity.output if CONNECTIVITY else []),
    ]
