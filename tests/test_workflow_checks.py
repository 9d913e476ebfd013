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
from workflow_helpers import REPO, job_counts, jobs, snakemake

BIN = Path(sys.executable).parent


def test_default_config_dry_run_plans_every_stage(tmp_path):
    result = snakemake(tmp_path, "--dry-run", configfile=REPO / "config.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    counts = job_counts(result.stdout + result.stderr)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    grid = config["finetune"]
    candidates = len(grid["lr"]) * len(grid["batch_size"]) * len(grid["steps"])
    assert counts["download"] == 3
    assert counts["pretrain"] == counts["tokenize_corpus"] == 2
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


def test_curve_pairs_choose_the_bezier_jobs(tmp_path):
    """connectivity.curves.pairs: the curves drawn (configs/paper-smoke.yaml leaves θ± out)."""
    pairs = "connectivity={curves: {pairs: [seeds_lora]}}"
    result = snakemake(tmp_path, "--dry-run", "--config", pairs, configfile=REPO / "config.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    planned = [j for j in jobs(result.stdout + result.stderr) if j["rule"] == "bezier"]
    assert [j["wildcards"] for j in planned] == ["pair=seeds_lora"]


def dry_run_without(tmp_path, edit) -> str:
    """The text of a dry run of the default config after `edit` removed parts of it."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    edit(config)
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--dry-run", configfile=configfile)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


CONNECTIVITY_RULES = ("pretrain_budget", "finetune_classifier", "connect", "bezier")
CONNECTIVITY_RULES += ("tabulate_connectivity", "plot_connectivity", "fetch_encoder")


def test_without_the_decorrelated_pair_no_theta_c4_is_built_or_evaluated(tmp_path):
    output = dry_run_without(tmp_path, lambda c: c["paths"].pop("decorrelated"))
    planned = jobs(output)
    assert [j["wildcards"] for j in planned if j["rule"] == "pretrain"] == ["model=theta0"]
    evaluated = {j["wildcards"].split(",")[0] for j in planned if j["rule"] == "evaluate"}
    assert evaluated == {"family=g1", "family=g2", "family=g3", "family=dexperts"}
    counts = job_counts(output)
    assert "weight_norms" not in counts and counts["tokenize_corpus"] == 1
    assert "fig03_g1.png" in output and "fig09" not in output and "fig10" not in output
    assert counts["bezier"] == 3  # connectivity stays


def test_without_connectivity_no_connectivity_job_is_planned(tmp_path):
    counts = job_counts(dry_run_without(tmp_path, lambda c: c.pop("connectivity")))
    assert not set(CONNECTIVITY_RULES) & set(counts)
    assert counts["pretrain"] == 2 and counts["weight_norms"] == counts["summarize"] == 1


def test_a_hub_theta0_without_optional_parts_pretrains_nothing(tmp_path):
    """The shape of a pretrained-LM config (SmolLM2): no tokenizer, model or pretrain section."""

    def pretrained_lm(config):
        for key in ("tokenizer", "model", "pretrain", "connectivity"):
            del config[key]
        del config["paths"]["decorrelated"]
        config["hub"] = {"models": {"theta0": {"path": str(tmp_path / "smollm2")}}}

    counts = job_counts(dry_run_without(tmp_path, pretrained_lm))
    assert counts["fetch_model"] == 1 and counts["finetune"] > 0 and counts["plot"] == 1
    for rule in ("pretrain", "train_tokenizer", "tokenize_corpus", "plot_pretraining"):
        assert rule not in counts, rule
    assert not set(CONNECTIVITY_RULES) & set(counts)


PAPER = REPO / "configs" / "paper.yaml"


@pytest.fixture(scope="module")
def paper_dry_run(tmp_path_factory) -> str:
    """The text of `snakemake --dry-run` on configs/paper.yaml."""
    result = snakemake(tmp_path_factory.mktemp("paper"), "--dry-run", configfile=PAPER)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def test_every_paper_job_asks_for_its_rules_memory_and_runtime_from_config(paper_dry_run):
    """Each rule of the paper DAG has its own `resources.<rule>` entry (none falls back to
    `default`: C4's preparation needs more than a profile's 4 GB), and its jobs ask for it."""
    wanted = yaml.safe_load(PAPER.read_text())["resources"]
    planned = [j for j in jobs(paper_dry_run) if j["rule"] != "all"]
    assert {"prepare_corpus", "tokenize_corpus", "pretrain", "fetch_dataset"} <= {
        j["rule"] for j in planned
    }
    for job in planned:
        assert job["rule"] in wanted, f"configs/paper.yaml has no resources.{job['rule']}"
        asked = dict(re.findall(r"(\w+)=([^,]+)", job["resources"]))
        own = wanted[job["rule"]]
        assert (int(asked["mem_mb"]), int(asked["runtime"])) == (own["mem_mb"], own["runtime"]), job


def test_paper_config_dry_run_plans_the_full_paper_dag(paper_dry_run):
    """configs/paper.yaml: every count follows from the config (Table-1 grid, g3 21 × 21 …)."""
    counts = job_counts(paper_dry_run)
    config = yaml.safe_load(PAPER.read_text())
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
    assert counts["tokenize_corpus"] == 1  # C4 into GPT-C4's token files
    assert counts["finetune_reference"] == 1  # Fig 9 (a): DistilGPT-2 vs DistilGPT-2+
    assert counts["plot_pretraining"] == 1  # Fig 11: GPT-C4's loss
    assert counts["aggregate"] == len(points)
    assert counts["bezier"] == 3  # seeds (full), seeds (LoRA), θ+ ↔ θ− (GPT-2 Large)
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
