"""The tiny config through the real workflow: download → prepare → tokenizer → pretrain →
fine-tune grid → selection → judges → evaluation → figures → summary (the session's `tiny_run`).

Determinism (a second run gives bitwise-identical models, tables and summary) is checked where
a second run is made anyway: the killed run (tests/test_reliability_kills.py) and the SLURM run
(tests/test_slurm.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_helpers import TINY, job_counts, jobs, snakemake

pytestmark = pytest.mark.workflow
CONFIG = yaml.safe_load(TINY.read_text())
MODELS = ["theta0", "theta_c4", "theta_pos", "theta_neg"]
FIGURES = [
    "fig03_g1", "fig04_word_probabilities", "fig05_g1_vs_g2", "fig06_dexperts_vs_weights",
    "fig07_g3", "fig08_g3_nll", "fig09_weight_norms", "fig10_decorrelated", "fig11_pretraining",
    "fig12_comparison",
]  # fmt: skip


def test_summary_holds_every_required_number(summary):
    assert set(summary) >= {"models", "judge", "timings_s"}
    assert set(summary["models"]) == set(MODELS)
    for name in ("theta0", "theta_c4"):
        assert summary["models"][name]["val_ppl"] > 1
    for name in ("theta_pos", "theta_neg"):
        assert {"nll_pos_val", "nll_neg_val"} <= set(summary["models"][name])
    for stage in ("download", "prepare_corpus", "train_tokenizer", "pretrain", "finetune"):
        assert summary["timings_s"][stage] > 0


def test_each_finetuned_model_prefers_its_own_sentiment(summary):
    pos, neg = summary["models"]["theta_pos"], summary["models"]["theta_neg"]
    assert pos["nll_pos_val"] < neg["nll_pos_val"]
    assert neg["nll_neg_val"] < pos["nll_neg_val"]


def test_pretrained_perplexity_is_far_below_the_vocabulary_size(summary):
    vocab = CONFIG["tokenizer"]["vocab_size"]
    for name in ("theta0", "theta_c4"):
        assert summary["models"][name]["val_ppl"] < vocab / 2


def test_judge_accuracy_is_recorded_and_beats_chance(summary):
    assert 1 / 3 < summary["judge"]["accuracy"] <= 1
    assert 0.5 < summary["judge"]["polar_accuracy"] <= 1


def test_checkpoints_are_safetensors_directories(tiny_run):
    for name in [*MODELS, "judge_lm"]:
        directory = tiny_run / "results" / "models" / name
        assert (directory / "model.safetensors").is_file(), name
        assert (directory / "config.json").is_file(), name
        assert not list(directory.glob("*.bin")) and not list(directory.glob("*.pt")), name


def test_no_temporary_file_is_left_behind(tiny_run):
    leftovers = [p for p in (tiny_run / "results").rglob("*.tmp")]
    leftovers += list((tiny_run / "resources").glob("*/*.tmp"))
    assert leftovers == []


def test_selection_table_lists_every_candidate_and_keeps_the_best(tiny_run):
    for sentiment in ("pos", "neg"):
        table = pd.read_csv(tiny_run / f"results/finetune/{sentiment}/candidates.tsv", sep="\t")
        assert len(table) == len(CONFIG["finetune"]["lr"]) * len(CONFIG["finetune"]["steps"])
        assert table.selected.sum() == 1
        best = table[table.selected].iloc[0]
        assert best.val_ppl == table.val_ppl.min()
        chosen = tiny_run / f"results/finetune/{sentiment}/{best.candidate}/model/model.safetensors"
        published = tiny_run / f"results/models/theta_{sentiment}/model.safetensors"
        assert chosen.read_bytes() == published.read_bytes()


def test_prompt_sets_follow_the_config(tiny_run):
    prompts = pd.read_parquet(tiny_run / "results/prepare/prompts.parquet")
    assert prompts.prompt_id.is_unique
    for kind in ("neutral", "positive", "negative"):
        assert (prompts.kind == kind).sum() == CONFIG["prompts"][kind]
    assert "The movie was" in set(prompts.text)
    cut = prompts[prompts.kind != "fixed"]
    assert cut.n_tokens.between(1, CONFIG["prompts"]["max_tokens"] + 5).all()


def test_pretraining_loss_curve_is_saved_and_falls(tiny_run):
    for name in ("theta0", "theta_c4"):
        loss = pd.read_parquet(tiny_run / f"results/pretrain/{name}/loss.parquet")
        assert list(loss.step) == list(range(CONFIG["pretrain"]["steps"]))
        assert loss.loss.iloc[-5:].mean() < loss.loss.iloc[:5].mean()


def test_second_run_has_nothing_to_do(tiny_run):
    result = snakemake(tiny_run, "--dry-run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" in result.stdout + result.stderr


def edited_config(tmp_path: Path, edit) -> Path:
    """A copy of the tiny config with one edit applied (keys re-sorted on purpose)."""
    config = yaml.safe_load(TINY.read_text())
    edit(config)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_changing_one_learning_rate_reruns_only_its_candidates(tiny_run, tmp_path):
    old = CONFIG["finetune"]["lr"][-1]
    edited = edited_config(tmp_path, lambda c: c["finetune"]["lr"].__setitem__(-1, old * 2))
    result = snakemake(tiny_run, "--dry-run", configfile=edited)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    counts = job_counts(output)
    assert counts["finetune"] == 2 and counts["select_finetune"] == 2
    upstream = {"download", "prepare_movie", "prepare_corpus", "train_tokenizer", "pretrain"}
    assert not upstream & set(counts), counts
    planned = jobs(output)
    new_lr = f"lr{old * 2:g}_"
    for job in planned:
        if job["rule"] == "finetune":
            assert new_lr in job["wildcards"] and "Missing output files" in job["reason"]
        if job["rule"] == "select_finetune":
            assert "Input files updated by another job" in job["reason"]
        if job["rule"] == "evaluate":  # θ0 ↔ θC4 does not involve the fine-tuned models
            assert "family=decorrelated" not in job["wildcards"]


def test_adding_one_alpha_to_g1_reruns_only_that_chunk_and_what_follows(tiny_run, tmp_path):
    edited = edited_config(tmp_path, lambda c: c["paths"]["g1"]["alpha"].append(1.5))
    result = snakemake(tiny_run, "--dry-run", configfile=edited)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert job_counts(output) == {
        "evaluate": 1, "aggregate": 1, "plot": 1, "summarize": 1, "all": 1,
    }  # fmt: skip
    evaluate = [job for job in jobs(output) if job["rule"] == "evaluate"]
    assert "family=g1" in evaluate[0]["wildcards"]


def test_summary_lists_every_experiment_point(summary):
    for family, section in (("g1", "g1"), ("g2", "g2"), ("decorrelated", "decorrelated")):
        alphas = CONFIG["paths"][family]["alpha"]
        assert summary[section]["alpha"] == sorted(alphas)
        for key in ("positive_score", "perplexity", "grammar", "distinct_2"):
            assert len(summary[section][key]) == len(alphas)
    assert summary["dexperts"]["alpha"] == sorted(CONFIG["dexperts"]["alpha"])
    g3 = summary["g3"]
    grid = CONFIG["paths"]["g3"]
    assert len(g3["alpha"]) == len(grid["alpha"]) * len(grid["beta"])
    assert {(a, b) for a, b in zip(g3["alpha"], g3["beta"], strict=True)} == {
        (a, b) for a in grid["alpha"] for b in grid["beta"]
    }
    for key in ("positive_score", "perplexity", "nll_pos", "nll_neg"):
        assert all(v is not None for v in g3[key]), key


def test_tables_score_each_prompt_kind_and_pooled_with_intervals_and_counts(tiny_run):
    table = pd.read_parquet(tiny_run / "results/tables/g1.parquet")
    assert set(table.kind) == {"all", "neutral", "positive", "negative", "fixed"}
    assert len(table) == 5 * len(CONFIG["paths"]["g1"]["alpha"])
    for metric in ("positive_score", "grammar", "perplexity", "distinct_2"):
        finite = table[metric].notna()
        assert (table[f"{metric}_lo"][finite] <= table[metric][finite] + 1e-12).all(), metric
        assert (table[metric][finite] <= table[f"{metric}_hi"][finite] + 1e-12).all(), metric
    per_point = table.groupby(["point", table.kind == "all"]).n_samples.sum().unstack()
    assert (per_point[True] == per_point[False]).all()  # pooled rows count every kind's samples
    samples = CONFIG["generation"]["samples_per_prompt"]
    neutral = table[table.kind == "neutral"]
    assert (neutral.n_samples == CONFIG["prompts"]["neutral"] * samples).all()
    assert (neutral.n_perplexity <= CONFIG["prompts"]["neutral"]).all()  # 1 scored per prompt


def test_summary_states_the_g1_barrier_and_monotonicity_with_intervals(summary):
    trends = summary["g1"]["trends"]
    text = json.dumps(trends)
    assert "barrier" in text and "spearman" in text
    g1 = summary["g1"]
    for key in ("positive_score", "perplexity"):
        assert len(g1[f"{key}_lo"]) == len(g1[key]) == len(g1["alpha"])
    assert all(isinstance(n, int) for n in g1["n_empty"])


def test_g1_moves_sentiment_from_negative_to_positive(summary):
    g1 = summary["g1"]
    low, high = g1["positive_score"][0], g1["positive_score"][-1]  # α = min, α = max
    assert high > low


def test_g3_endpoints_reproduce_the_finetuned_models_test_nll(summary):
    g3 = summary["g3"]
    at = {(a, b): i for i, (a, b) in enumerate(zip(g3["alpha"], g3["beta"], strict=True))}
    pos, neg = at[(1.0, 0.0)], at[(0.0, 1.0)]  # g3(1, 0) = θ+, g3(0, 1) = θ−
    assert g3["nll_pos"][pos] < g3["nll_pos"][neg]
    assert g3["nll_neg"][neg] < g3["nll_neg"][pos]


def test_fig9_pairs_share_the_small_model_theta0(tiny_run):
    """At the default scale θ0 is the small model, so Fig 9 (a) is θ0 vs θ+ (no extra
    fine-tuning) and (b) θ0 vs θC4; the tied lm_head counts once."""
    from lmlerp.io import checkpoints
    from lmlerp.space import norms

    table = pd.read_parquet(tiny_run / "results/tables/weight_norms.parquet")
    first, second = dict.fromkeys(table.pair)
    assert (first, second) == (
        "θ0 vs θ+ (fine-tuned on positive)", "θ0 vs θC4 (independent pretraining)"
    )  # fmt: skip
    state = {m: checkpoints.load(tiny_run / "results/models" / m).state_dict() for m in MODELS}
    expected = norms.weight_difference_norms(state["theta0"], state["theta_pos"])
    assert table[table.pair == first].value.tolist() == expected.value.tolist()
    assert "lm_head.weight" not in set(table.tensor)
    assert not (tiny_run / "results/models/reference_pos").exists()


def test_every_figure_is_drawn(tiny_run):
    for name in FIGURES:
        png = tiny_run / "results" / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert png.stat().st_size > 10_000, name


def test_each_weight_space_point_has_a_verifiable_recipe(tiny_run, monkeypatch):
    from lmlerp.space.recipes import Recipe

    monkeypatch.chdir(tiny_run)  # base paths are relative to the workflow's working directory
    recipes = sorted((tiny_run / "results" / "evaluate" / "g3").glob("c*/recipes/*/recipe.json"))
    grid = CONFIG["paths"]["g3"]
    assert len(recipes) == len(grid["alpha"]) * len(grid["beta"])
    for path in recipes:
        recipe = Recipe.read(path)
        assert set(recipe.bases) == {"theta0", "theta_pos", "theta_neg"}
        assert sum(recipe.coefficients.values()) == pytest.approx(1.0)
        recipe.verify()


def test_samples_carry_their_coordinates(tiny_run):
    samples = pd.concat(
        pd.read_parquet(p) for p in (tiny_run / "results/evaluate/g1").glob("c*/samples.parquet")
    )
    prompts = len(pd.read_parquet(tiny_run / "results/prepare/prompts.parquet"))
    per_point = prompts * CONFIG["generation"]["samples_per_prompt"]
    assert len(samples) == per_point * len(CONFIG["paths"]["g1"]["alpha"])
    assert {"family", "point", "alpha", "prompt_id", "sample_id", "continuation"} <= set(
        samples.columns
    )
    assert samples.groupby(["point", "prompt_id", "sample_id"]).size().max() == 1


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_report_renders_in_headless_chromium_and_lists_every_figure(tiny_run):
    import subprocess

    result = snakemake(tiny_run, "--report", "results/report.html")
    assert result.returncode == 0, result.stderr[-3000:]
    report = tiny_run / "results" / "report.html"
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tiny_run / '.chromium'}", "--virtual-time-budget=10000",
    ]  # fmt: skip
    dom = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", report.as_uri()],
        capture_output=True, text=True, timeout=180,
    ).stdout  # fmt: skip
    app = dom[dom.index('<div id="app">') :]
    app = app[: app.index("<script")]  # what the report's JavaScript rendered, not its data
    assert "lmlerp: linear interpolation" in app and "Results" in app
    for name in FIGURES:  # every figure is embedded in the rendered page
        assert f"{name}.png" in dom, name


def test_materialized_weights_equal_the_in_memory_combination(tiny_run):
    import torch

    from lmlerp.io import checkpoints
    from lmlerp.space import merge, recipes

    assert CONFIG["evaluation"]["materialize"] == "weights"
    points = sorted(
        p.parent for p in (tiny_run / "results/evaluate/g1").glob("c*/recipes/*/recipe.json")
    )
    assert len(points) == len(CONFIG["paths"]["g1"]["alpha"])
    bases = {
        name: checkpoints.load(tiny_run / "results/models" / name).state_dict()
        for name in ("theta_pos", "theta_neg")
    }
    for point in points:
        recipe = recipes.Recipe.read(point / "recipe.json")
        written = checkpoints.load(point / "model").state_dict()
        expected = merge.combine(bases, recipe.coefficients)
        for name, tensor in expected.items():
            torch.testing.assert_close(written[name], tensor, rtol=0, atol=0)
