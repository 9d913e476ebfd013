# Grids, wildcard constraints and input/params functions of the rules in connectivity.smk.
import re

LMC = config["connectivity"]
# The models that re-run θ0's recipe at a pretraining budget of their own (rule pretrain_budget).
BUDGETS = lmlerp_config.budgets(config)
LMC_SIZES = list(LMC["models"])
LMC_METHODS = {size: ["full"] for size in LMC_SIZES} | {
    LMC["curves"]["model"]: ["full", "lora"]
}
CURVE_PAIRS = LMC["curves"].get("pairs", ["seeds_full", "seeds_lora", "theta_pos_neg"])
# The quantities whose barriers are tabulated: F1 (of QQP's duplicates) only where the report
# gives it (lmlerp.connectivity.examples.positive_class).
LMC_QUANTITIES = ["loss", "error"] + (["f1_error"] if LMC["task"] == "glue_qqp" else [])


wildcard_constraints:
    size="|".join(map(re.escape, LMC_SIZES)),
    method="full|lora",
    steps="|".join(
        sorted(
            {
                str(m["pretrain_steps"])
                for m in LMC["models"].values()
                if "pretrain_steps" in m
            }
        )
    )
    or "^$",
    pair="|".join(CURVE_PAIRS),


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


def classifier_base(wildcards):
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


def lora_settings(wildcards):
    """The LoRA adapters of the `lora` method; None trains every weight."""
    return canonical(LMC["lora"]) if wildcards.method == "lora" else None


def curve_inputs(wildcards):
    """What a curve's endpoints come from: θ± themselves, or the seeds' checkpoint directory."""
    if wildcards.pair == "theta_pos_neg":
        return {"theta1": MODELS["theta_pos"], "theta2": MODELS["theta_neg"]}
    method = wildcards.pair.split("_", 1)[1]
    return {
        "checkpoints": expand(
            rules.finetune_classifier.output.checkpoints,
            size=LMC["curves"]["model"],
            method=method,
        )[0]
    }


def lmc_jobs():
    """(size, method) of every classifier fine-tuning, in table order."""
    return [
        (size, method) for size, methods in LMC_METHODS.items() for method in methods
    ]


def lmc_model_labels():
    """Column names of the tables: the model name, with ' (LoRA)' for adapter fine-tuning."""
    return [
        size if method == "full" else f"{size} (LoRA)" for size, method in lmc_jobs()
    ]


def connectivity_tables():
    """The report's metric × model table of each quantity, one TSV each."""
    return {
        quantity: report(
            f"results/tables/connectivity_{quantity}.tsv",
            caption="../report/connectivity_table.rst",
            category="Mode connectivity",
        )
        for quantity in LMC_QUANTITIES
    }
