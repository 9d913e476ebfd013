# Grids, wildcard constraints and input/params functions of the rules in report.smk.
def summary_inputs():
    """The judge's record that summary.json quotes, and the judge LM, where this config builds them."""
    inputs = {}
    if config["scorers"]["sentiment"] == "tfidf":
        inputs["judge_metrics"] = rules.train_judge.output.metrics
    if config["scorers"]["judge_lm"] == "smollm2":
        inputs["judge_lm"] = rules.convert_judge_lm.output.model
    return inputs


def pretrain_metrics():
    """The pretraining record of each LM pretrained here (none with a hub θ0 and no θC4)."""
    return expand(rules.pretrain.output.metrics, model=PRETRAINED) if PRETRAINED else []


def connectivity_inputs():
    """The connectivity tables and curves that summary.json quotes, where the config has them."""
    if not CONNECTIVITY:
        return {}
    return {
        "connectivity": rules.tabulate_connectivity.output.barriers,
        "connectivity_data": rules.tabulate_connectivity.output.data,
        "curves": rules.plot_connectivity.input.curves,
    }


def plot_inputs():
    """Each family's table, and Fig 9's weight norms where θC4 exists (paths.decorrelated)."""
    tables = {
        family: expand(rules.aggregate.output.table, family=family)[0]
        for family in FAMILIES
    }
    norms = {"norms": rules.weight_norms.output.norms} if DECORRELATED else {}
    return {**tables, **norms}


def decorrelated_figures():
    """Fig 9 (θ0 vs θ+ beside θ0 vs θC4) and Fig 10 (θ0 ↔ θC4): only with paths.decorrelated."""
    if not DECORRELATED:
        return {}
    return {
        "fig09": figure("fig09_weight_norms", "../report/fig09.rst"),
        "fig10": figure("fig10_decorrelated", "../report/fig10.rst"),
    }


def benchmark_patterns():
    """Each rule's `benchmark:` pattern, from the rules defined so far (every stage but this one)."""
    return {rule.name: str(rule.benchmark) for rule in workflow.rules if rule.benchmark}
