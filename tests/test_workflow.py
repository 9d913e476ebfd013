"""The tiny config through the real workflow: download → prepare → tokenizer → pretrain →
fine-tune grid → selection → judge → summary. About a minute on 2 cores, plus a second run
for determinism."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_helpers import TINY, job_counts, jobs, prepare_workdir, snakemake

pytestmark = pytest.mark.workflow
CONFIG = yaml.safe_load(TINY.read_text())
MODELS = ["theta0", "theta_c4", "theta_pos", "theta_neg"]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    work = prepare_workdir(tmp_path_factory.mktemp("tiny"))
    result = snakemake(work)
    assert result.returncode == 0, result.stderr[-5000:]
    return work


@pytest.fixture(scope="session")
def summary(tiny_run) -> dict:
    return json.loads((tiny_run / "results" / "summary.json").read_text())


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


def test_changing_one_learning_rate_reruns_only_its_candidates(tiny_run, tmp_path):
    config = yaml.safe_load(TINY.read_text())
    old = config["finetune"]["lr"][-1]
    config["finetune"]["lr"][-1] = old * 2
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(config))
    result = snakemake(tiny_run, "--dry-run", configfile=edited)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert job_counts(output) == {"finetune": 2, "select_finetune": 2, "summarize": 1, "all": 1}
    planned = jobs(output)
    new_lr = f"lr{old * 2:g}_"
    for job in planned:
        if job["rule"] == "finetune":
            assert new_lr in job["wildcards"] and "Missing output files" in job["reason"]
        if job["rule"] == "select_finetune":
            assert "Input files updated by another job" in job["reason"]


def test_two_runs_give_bitwise_identical_models(tiny_run, tmp_path_factory):
    second = prepare_workdir(tmp_path_factory.mktemp("tiny-again"))
    targets = [f"results/models/{name}" for name in MODELS]
    result = snakemake(second, *targets)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in MODELS:
        first = (tiny_run / "results/models" / name / "model.safetensors").read_bytes()
        again = (second / "results/models" / name / "model.safetensors").read_bytes()
        assert first == again, f"{name} differs between two runs of the same config"
    shutil.rmtree(second / "results")
