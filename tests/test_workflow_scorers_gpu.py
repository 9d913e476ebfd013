"""Scorer kinds pick the evaluate inputs; GPU-capable rules take resources from config."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import yaml
from tiny_hub import write_hub
from workflow_helpers import GPU_RULES, TINY, job_counts, prepare_workdir, snakemake

HUB = ("sentiment", "grammar", "judge_lm")


def _dry_run(tmp_path, edit) -> str:
    work = prepare_workdir(tmp_path)
    for name in HUB:  # stand-ins for what the hub fetch rule produces
        (work / "resources" / "hub" / name).mkdir(parents=True)
    config = yaml.safe_load(TINY.read_text())
    edit(config)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(work, "--dry-run", configfile=path)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _jobs(output: str, rule: str) -> list[dict[str, str]]:
    """input and resources lines of every planned job of `rule`."""
    found = []
    for chunk in re.split(r"^(?:local)?rule ", output, flags=re.MULTILINE)[1:]:
        if chunk.startswith(f"{rule}:"):
            fields = dict(re.findall(r"^\s+(input|resources): (.*)$", chunk, flags=re.MULTILINE))
            found.append(fields)
    return found


def test_transformers_scorers_read_the_hub_directories(tmp_path):
    def edit(config):
        config["scorers"].update(sentiment="transformers", grammar="transformers")
        config["scorers"].update(judge_lm="transformers")
        config["hub"] = {"models": {name: {"path": str(tmp_path / name)} for name in HUB}}

    evaluate = _jobs(_dry_run(tmp_path, edit), "evaluate")
    assert evaluate
    for job in evaluate:
        inputs = job["input"].split(", ")
        assert {f"resources/hub/{name}" for name in HUB} <= set(inputs)
        assert "results/judge" not in inputs and "results/models/judge_lm" not in inputs


def test_offline_scorers_read_what_the_workflow_builds(tmp_path):
    evaluate = _jobs(_dry_run(tmp_path, lambda config: None), "evaluate")
    assert evaluate
    for job in evaluate:
        inputs = job["input"].split(", ")
        assert "results/judge" in inputs and "results/models/judge_lm" in inputs
        assert not [i for i in inputs if i.startswith("resources/hub")]  # harper reads nothing


def test_gpu_rules_take_memory_and_runtime_from_config(tmp_path):
    """Every GPU rule asks for one GPU with its configured memory and time; no other rule asks
    for a GPU (every rule has its memory and time from config: the paper dry-run test)."""
    rules = sorted(GPU_RULES - {"finetune_reference"})  # planned only at paper scale
    wanted = {rule: (1000 + k, 10 + k) for k, rule in enumerate(rules)}

    def edit(config):
        config["device"] = "cuda"
        for rule, (mem, minutes) in wanted.items():
            config["resources"][rule] = {"mem_mb": mem, "runtime": minutes}

    output = _dry_run(tmp_path, edit)
    for rule, (mem, minutes) in wanted.items():
        jobs = _jobs(output, rule)
        assert jobs, rule
        for job in jobs:
            assert {"gpu=1", f"mem_mb={mem}", f"runtime={minutes}"} <= set(
                job["resources"].split(", ")
            ), rule
    others = re.findall(r"^(?:local)?rule (\w+):", output, flags=re.MULTILINE)
    for rule in set(others) - set(wanted):
        for job in _jobs(output, rule):
            assert "gpu=1" not in job.get("resources", ""), rule


def test_switching_to_transformers_scorers_re_runs_only_the_evaluation(tiny_run, tmp_path):
    """The tiny run, then the paper's kind of judges (tiny random stand-ins): only evaluation
    and what follows it re-run, and the new scores reach samples, tables and summary."""
    work = tmp_path / "work"
    shutil.copytree(tiny_run, work, symlinks=True)
    write_hub(tmp_path / "hub", sentiment_bias=np.log([0.2, 0.3, 0.5]).tolist())
    config = yaml.safe_load(TINY.read_text())
    config["scorers"].update(sentiment="transformers", grammar="transformers")
    config["scorers"].update(judge_lm="transformers")
    scores = ("sentiment", "grammar", "judge_lm")
    models = {score: {"path": str(tmp_path / "hub" / score)} for score in scores}
    config["hub"] = {"offline": True, "models": models}
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(config))

    dry = snakemake(work, "--dry-run", configfile=path)
    assert dry.returncode == 0, dry.stderr[-3000:]
    rerun = {"fetch_model", "evaluate", "aggregate", "plot", "summarize", "all"}
    assert set(job_counts(dry.stdout)) == rerun
    result = snakemake(work, configfile=path)
    assert result.returncode == 0, result.stderr[-5000:]

    samples = pd.read_parquet(work / "results" / "evaluate" / "g1" / "c0" / "samples.parquet")
    # Eq. 6 of a classifier whose P(neg, neutral, pos) is (0.2, 0.3, 0.5) for every text
    np.testing.assert_allclose(samples.positive_score, 0.65, rtol=1e-5)
    assert samples.grammar.between(0, 1).all() and samples.grammar.nunique() > 2  # not 0/1 flags
    scored = samples[samples.sample_id == 0]
    written = scored.continuation.str.strip() != ""  # an immediate EOS leaves nothing to score
    assert written.any() and np.isfinite(scored.perplexity[written]).all()
    assert scored.perplexity[~written].isna().all()
    table = pd.read_parquet(work / "results" / "tables" / "g1.parquet")
    np.testing.assert_allclose(table.positive_score, 0.65, rtol=1e-5)
    summary = json.loads((work / "results" / "summary.json").read_text())
    reference = json.loads((tiny_run / "results" / "summary.json").read_text())
    assert summary["models"] == reference["models"]  # nothing upstream of evaluation changed
