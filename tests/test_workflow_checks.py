"""Static checks of the workflow: the default and the paper DAG as planned by a dry run.

Lint and formatting (`snakemake --lint`, `snakefmt --check`, ruff) run in `make lint`, which
`make test` runs first; bad configs: tests/test_reliability_configs.py."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from workflow_helpers import REPO, job_counts, snakemake

BIN = Path(sys.executable).parent


def test_default_config_dry_run_plans_every_stage(tmp_path):
    result = snakemake(tmp_path, "--dry-run", configfile=REPO / "config.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    counts = job_counts(result.stdout + result.stderr)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    grid = config["finetune"]
    candidates = len(grid["lr"]) * len(grid["batch_size"]) * len(grid["steps"])
    assert counts["download"] == 3
    assert counts["pretrain"] == 2
    assert counts["finetune"] == 2 * candidates
    assert counts["select_finetune"] == 2
    for rule in ("prepare_movie", "prepare_corpus", "train_tokenizer", "train_judge", "summarize"):
        assert counts[rule] == 1
    lmc = config["connectivity"]
    budgets = {m["pretrain_steps"] for m in lmc["models"].values()} - {config["pretrain"]["steps"]}
    assert counts["pretrain_budget"] == len(budgets)
    assert counts["finetune_classifier"] == counts["connect"] == len(lmc["models"]) + 1  # + LoRA
    assert counts["bezier"] == 3  # seeds (full), seeds (LoRA), θ+ ↔ θ−
    assert counts["tabulate_connectivity"] == counts["plot_connectivity"] == 1
    assert counts["plot_pretraining"] == counts["weight_norms"] == 1  # Figs 11 and 9
    assert "finetune_reference" not in counts  # θ0 is the small model: Fig 9 (a) is θ0 vs θ+


def test_paper_config_dry_run_plans_the_full_paper_dag(tmp_path):
    """configs/paper.yaml: every count follows from the config (Table-1 grid, g3 21 × 21 …)."""
    paper = REPO / "configs" / "paper.yaml"
    result = snakemake(tmp_path, "--dry-run", configfile=paper)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = job_counts(result.stdout + result.stderr)
    config = yaml.safe_load(paper.read_text())
    grid, paths, hub = config["finetune"], config["paths"], config["hub"]
    candidates = len(grid["lr"]) * len(grid["batch_size"]) * len(grid["steps"])
    assert candidates == 36  # paper Table 1
    per_job = config["evaluation"]["points_per_job"]
    points = {
        "g1": len(paths["g1"]["alpha"]),
        "g2": len(paths["g2"]["alpha"]),
        "g3": len(paths["g3"]["alpha"]) * len(paths["g3"]["beta"]),
        "decorrelated": len(paths["decorrelated"]["alpha"]),
        "dexperts": len(config["dexperts"]["alpha"]),
    }
    assert points["g3"] == 441
    assert counts["evaluate"] == sum(-(-n // per_job) for n in points.values())
    assert counts["finetune"] == 2 * candidates
    assert counts["fetch_model"] == len(hub["models"]) == 5
    assert counts["fetch_dataset"] == 2 and counts["fetch_prompts"] == 3
    assert counts["pretrain"] == 1  # GPT-C4 only: θ0 is GPT-2 Large from the hub
    assert counts["finetune_reference"] == 1  # Fig 9 (a): DistilGPT-2 vs DistilGPT-2+
    assert counts["plot_pretraining"] == 1  # Fig 11: GPT-C4's loss
    assert counts["aggregate"] == len(points)
    encoders = config["connectivity"]["models"]
    assert counts["fetch_encoder"] == len(encoders) == 3  # BERT base, RoBERTa base and large
    assert counts["finetune_classifier"] == len(encoders) + 1  # + LoRA for the curves' model
    for rule in (
        "download",
        "train_tokenizer",
        "train_judge",
        "convert_judge_lm",
        "pretrain_budget",
    ):
        assert rule not in counts, rule


PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
COMMAND = re.compile(r"(?:^|`)((?:\.venv/bin/)?snakemake [^`\n#]*?)\s*(?:`|#|$)", re.MULTILINE)


def documented_commands() -> list[str]:
    """Every `snakemake` command the README and docs/ show, as written (dry-runnable ones)."""
    found = {m.strip() for page in PAGES for m in COMMAND.findall(page.read_text())}
    return sorted(c for c in found if not re.search(r"--(report|lint|unlock)", c))


def test_the_docs_show_the_paper_and_slurm_commands():
    commands = documented_commands()
    assert any("--configfile configs/paper.yaml" in c and "--profile" not in c for c in commands)
    assert any("--profile profiles/slurm" in c for c in commands)


@pytest.mark.parametrize("command", documented_commands())
def test_every_documented_command_dry_runs_from_the_repo_root(command):
    """As written, from the repository root (its own config.yaml beside it), plus `-n`."""
    words = command.split()
    program = [sys.executable, "-m", "snakemake"]
    result = subprocess.run(
        [*program, *words[1:], "--dry-run"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
