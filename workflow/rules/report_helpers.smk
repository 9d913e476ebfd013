# Grids, wildcard constraints and input/params functions of the rules in report.smk.
def summary_inputs():
    """The judge's record that summary.json quotes, and the judge LM, where this config builds them."""
    inputs = {}
    if config["scorers"]["sentiment"] == "tfidf":
        inputs["judge_metrics"] = rules.train_judge.output.metrics
    if config["scorers"]["judge_lm"] == "smollm2":
        inputs["judge_lm"] = rules.convert_judge_lm.output.model
    return inputs


def benchmark_patterns():
    """Each rule's `benchmark:` pattern, from the rules defined so far (every stage but this one)."""
    return {rule.name: str(rule.benchmark) for rule in workflow.rules if rule.benchmark}


def figure(name, caption, category="Figures"):
    return report(f"results/figures/{name}.png", caption=caption, category=category)
