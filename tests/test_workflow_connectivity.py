"""The mode-connectivity stage of the tiny-config run: summary, tables, figures, checkpoints."""

from __future__ import annotations

import itertools

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
    {*range(0, LMC["finetune"]["steps"] + 1, LMC["finetune"]["checkpoint_every"]),
     LMC["finetune"]["steps"]}
)  # fmt: skip
PAIRS = sorted(f"{a}-{b}" for a, b in itertools.combinations(LMC["seeds"], 2))
METRICS = {"BH", "CG", "ICG", "rebasin"}


def test_summary_has_barriers_per_model_checkpoint_quantity_and_pair(summary):
    block = summary["connectivity"]
    assert STEPS[0] == 0 and block["seed_pairs"] == PAIRS
    assert set(block["pairs"]) == set(MODELS)
    for model in MODELS:
        assert sorted(map(int, block["pairs"][model])) == STEPS
        for step in block["pairs"][model].values():
            for quantity in ("loss", "error"):
                values = step[quantity]
                assert set(values) == METRICS | {"endpoints"}
                for metric in METRICS:
                    spread = values[metric]
                    assert set(spread["by_pair"]) == set(PAIRS)
                    assert spread["max"] >= spread["mean"] >= spread["min"]
                    assert spread["mean"] == pytest.approx(
                        sum(spread["by_pair"].values()) / len(PAIRS)
                    )
                for pair in PAIRS:
                    assert values["CG"]["by_pair"][pair] >= values["BH"]["by_pair"][pair] >= 0
                assert values["ICG"] == values["CG"]
        assert set(block["delta"][model]) == {"loss", "error"}
        bh = block["delta"][model]["loss"]["BH"]
        assert bh["abs_delta"]["min"] >= 0 and bh["abs_delta"]["max"] >= abs(bh["delta"]["mean"])
    for record in block["data"].values():
        assert record["task"] == "movie_sentiment" and record["dropped"] == {}
        assert record["examples"]["train"] > 0 and record["examples"]["eval"] > 0


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
        assert sorted(set(table.step)) == STEPS and sorted(set(table.pair)) == PAIRS
        for _, group in table.groupby(["pair", "step"]):
            assert list(group.t) == pytest.approx([i / (n - 1) for i in range(n)])
        assert table.accuracy.between(0, 1).all()


def test_tables_are_metric_by_model(tiny_run):
    for quantity in ("loss", "error"):
        table = pd.read_csv(tiny_run / f"results/tables/connectivity_{quantity}.tsv", sep="\t")
        assert list(table.columns) == [
            "metric", *(f"{m}{s}" for m in MODELS for s in ("", " min", " max"))
        ]  # fmt: skip
        barriers = ["BH", "CG", "ICG", "rebasin"]
        assert list(table.metric) == [
            "endpoints", *barriers, "endpoints (step 0)", *(f"{b} (step 0)" for b in barriers),
            *(f"|Δ{b}|" for b in barriers), *(f"Δ{b}" for b in barriers),
        ]  # fmt: skip
        for model in MODELS:
            assert (table[f"{model} max"] >= table[f"{model} min"]).all()
    assert not (tiny_run / "results/tables/connectivity_f1_error.tsv").exists()  # QQP only


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
