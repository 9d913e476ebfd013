"""The mode-connectivity stage of the tiny-config run: summary, tables, figures, checkpoints."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from workflow_helpers import TINY, job_counts, snakemake

pytestmark = pytest.mark.workflow
CONFIG = yaml.safe_load(TINY.read_text())
LMC = CONFIG["connectivity"]
CURVE_MODEL = LMC["curves"]["model"]
MODELS = [*LMC["models"], f"{CURVE_MODEL} (LoRA)"]
STEPS = sorted(
    {*range(LMC["finetune"]["checkpoint_every"], LMC["finetune"]["steps"] + 1,
            LMC["finetune"]["checkpoint_every"]), LMC["finetune"]["steps"]}
)  # fmt: skip
METRICS = {"BH", "CG", "ICG", "rebasin"}


def test_summary_has_barriers_per_model_checkpoint_and_quantity(summary):
    block = summary["connectivity"]
    assert set(block["pairs"]) == set(MODELS)
    for model in MODELS:
        assert sorted(map(int, block["pairs"][model])) == STEPS
        for step in block["pairs"][model].values():
            for quantity in ("loss", "error"):
                values = step[quantity]
                assert set(values) == METRICS
                assert values["CG"] >= values["BH"] >= 0
                assert values["ICG"] == values["CG"]
        assert set(block["delta"][model]) == {"loss", "error"}


def test_summary_compares_each_curve_with_its_line(summary):
    curves = summary["connectivity"]["curves"]
    assert set(curves) == {"seeds_full", "seeds_lora", "theta_pos_neg"}
    for pair in curves.values():
        assert set(pair) == {"line", "bezier"}
        for path in pair.values():
            assert path["max_loss"] >= path["mean_loss"] > 0


def test_line_curves_have_the_configured_grid_per_checkpoint(tiny_run):
    n = LMC["path_points"]
    for size in LMC["models"]:
        table = pd.read_parquet(tiny_run / f"results/connectivity/lmc/{size}/full/curves.parquet")
        assert sorted(set(table.step)) == STEPS
        for _, group in table.groupby("step"):
            assert list(group.t) == pytest.approx([i / (n - 1) for i in range(n)])
        assert table.accuracy.between(0, 1).all()


def test_tables_are_metric_by_model(tiny_run):
    for quantity in ("loss", "error"):
        table = pd.read_csv(tiny_run / f"results/tables/connectivity_{quantity}.tsv", sep="\t")
        assert list(table.columns) == ["metric", *MODELS]
        assert list(table.metric) == [
            "BH", "CG", "ICG", "rebasin", "ΔBH", "ΔCG", "ΔICG", "Δrebasin",
        ]  # fmt: skip


def test_bezier_curves_share_the_line_endpoints(tiny_run):
    for pair in ("seeds_full", "seeds_lora", "theta_pos_neg"):
        table = pd.read_parquet(tiny_run / f"results/connectivity/bezier/{pair}/curves.parquet")
        line, curve = (table[table.path == p].sort_values("t") for p in ("line", "bezier"))
        assert len(line) == len(curve) == LMC["path_points"]
        assert curve.loss.iloc[0] == pytest.approx(line.loss.iloc[0], rel=1e-5)
        assert curve.loss.iloc[-1] == pytest.approx(line.loss.iloc[-1], rel=1e-5)
        phi = tiny_run / f"results/connectivity/bezier/{pair}/phi/model.safetensors"
        assert phi.is_file()


def test_classifier_checkpoints_are_safetensors_every_k_steps(tiny_run):
    root = tiny_run / "results/connectivity/finetune"
    for size in LMC["models"]:
        for seed in LMC["seeds"]:
            checkpoints = root / size / "full" / "checkpoints" / f"seed{seed}"
            found = sorted(int(p.name.split("-")[1]) for p in checkpoints.glob("step-*"))
            assert found == STEPS
            for step in found:
                assert (checkpoints / f"step-{step}" / "model.safetensors").is_file()


def test_connectivity_figures_are_drawn(tiny_run):
    for name in ("connectivity_steps", "connectivity_curves"):
        png = tiny_run / "results" / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert png.stat().st_size > 10_000, name


def test_smaller_pretraining_budget_is_its_own_model(tiny_run):
    small = min(source["pretrain_steps"] for source in LMC["models"].values())
    assert small < CONFIG["pretrain"]["steps"]
    assert (tiny_run / f"results/connectivity/pretrained/steps{small}/model.safetensors").is_file()


def test_changing_the_path_grid_reruns_only_path_evaluations(tiny_run, tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["connectivity"]["path_points"] += 2
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(config))
    result = snakemake(tiny_run, "--dry-run", configfile=edited)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    counts = job_counts(output)
    assert counts["connect"] == len(MODELS) and counts["bezier"] == 3
    trained = {"pretrain", "pretrain_budget", "finetune", "finetune_classifier", "evaluate"}
    assert not trained & set(counts), counts
