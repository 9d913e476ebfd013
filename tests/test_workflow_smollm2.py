"""configs/smollm2.yaml: its DAG (dry run of the real config) and the same DAG run end to end on a
tiny random Llama standing in for SmolLM2 (θ0) and Gemma (the judge LM), at toy counts."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import tiny_llama
import yaml
from workflow_helpers import REPO, job_counts, prepare_workdir, snakemake

pytestmark = pytest.mark.workflow
SMOLLM2 = REPO / "configs" / "smollm2.yaml"
PATHS = ("g1", "g2", "g3", "dexperts")


def smollm2_dag(work: Path) -> dict[str, int]:
    """Jobs per rule of a dry run of configs/smollm2.yaml as written."""
    done = snakemake(prepare_workdir(work), "-n", configfile=SMOLLM2)
    assert done.returncode == 0, done.stderr[-3000:]
    return job_counts(done.stdout)


def test_the_config_converts_both_lms_and_pretrains_nothing(tmp_path):
    counts = smollm2_dag(tmp_path)
    assert counts["join_gguf"] == 2 and counts["convert_model"] == 2  # θ0 and the judge LM
    assert counts["finetune"] == 4  # 2 learning rates × θ+ and θ−
    absent = {"pretrain", "train_tokenizer", "tokenize_corpus", "convert_judge_lm", "fetch_model"}
    absent |= {"finetune_classifier", "connect", "bezier", "pretrain_budget", "plot_connectivity"}
    assert not absent & set(counts), sorted(absent & set(counts))
    assert counts["download"] == 7  # vader, gensim, smollm2 and Gemma's four parts


def tiny_config(work: Path) -> Path:
    """configs/smollm2.yaml with tiny random Llamas as θ0 and judge (local directories) and
    toy counts; everything else — rules, scorers, paths, statistics — as the config has it."""
    vocab = tiny_llama.tokenizer()
    shape = {"max_position_embeddings": 256}  # byte-level BPE of 300 tokens: long sentences
    theta0 = tiny_llama.write(work / "stand-ins" / "theta0", vocab, tied=True, seed=1, **shape)
    judge = tiny_llama.write(work / "stand-ins" / "judge", vocab, tied=False, seed=2, **shape)
    config = yaml.safe_load(SMOLLM2.read_text())
    stand_ins = {"theta0": theta0, "judge_lm": judge}
    config["hub"]["models"] = {role: {"path": str(d)} for role, d in stand_ins.items()}
    del config["gguf"]
    config["assets"] = {
        k: v for k, v in config["assets"].items() if k in {"vader", "gensim", "smollm2"}
    }
    config["finetune"] |= {"lr": [1.0e-3, 3.0e-3], "steps": [3], "warmup_steps": 1}
    config["finetune"] |= {"checkpoint_every": 2, "batch_size": [8]}
    config["prompts"] |= {"neutral": 2, "positive": 1, "negative": 1}
    config["paths"] = {"g1": {"alpha": [0.0, 0.5, 1.0]}, "g2": {"alpha": [-1.0, 0.0, 1.0]},
                       "g3": {"alpha": [0.0, 1.0], "beta": [0.0, 1.0]}}  # fmt: skip
    config["dexperts"]["alpha"] = [0.0, 1.0]
    config["generation"] |= {"samples_per_prompt": 2, "max_new_tokens": 8}
    config["evaluation"] |= {"nll_sentences": 20, "perplexity_samples": 1}
    config["statistics"]["resamples"] = 100
    path = work / "smollm2-tiny.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


@pytest.fixture(scope="module")
def smol_run(tmp_path_factory) -> Path:
    work = prepare_workdir(tmp_path_factory.mktemp("smollm2") / "run")
    done = snakemake(work, configfile=tiny_config(work), timeout=1200)
    assert done.returncode == 0, done.stderr[-4000:]
    return work


def test_theta_pm_are_fine_tuned_llamas_of_theta0s_shape(smol_run):
    configs = {
        name: json.loads((smol_run / directory / "config.json").read_text())
        for name, directory in {
            "theta0": "resources/hub/theta0",
            "theta_pos": "results/models/theta_pos",
            "theta_neg": "results/models/theta_neg",
        }.items()
    }
    assert {tuple(c["architectures"]) for c in configs.values()} == {("LlamaForCausalLM",)}
    assert {c["num_key_value_heads"] for c in configs.values()} == {2}  # grouped-query attention
    for sentiment in ("pos", "neg"):
        table = pd.read_csv(smol_run / f"results/finetune/{sentiment}/candidates.tsv", sep="\t")
        assert len(table) == 2 and table.val_ppl.notna().all()


def test_every_path_is_scored_on_every_prompt_with_intervals(smol_run):
    for family in PATHS:
        table = pd.read_parquet(smol_run / f"results/tables/{family}.parquet")
        assert len(table) > 0, family
        lows = [c for c in table.columns if c.endswith("_lo")]
        assert lows, table.columns.tolist()
        finite = table.dropna(subset=["perplexity"])
        assert (finite.perplexity > 1).all(), family  # a random judge: high but finite
    g1 = pd.read_parquet(smol_run / "results/tables/g1.parquet")
    assert sorted(g1.alpha.unique()) == [0.0, 0.5, 1.0]


def test_the_summary_holds_the_g1_barrier_and_no_decorrelated_pair(smol_run):
    summary = json.loads((smol_run / "results/summary.json").read_text())
    text = json.dumps(summary)
    assert "decorrelated" not in text and "connectivity" not in summary
    barrier = summary["g1"]["trends"]["kinds"]["all"]["perplexity"]["barrier"]
    assert barrier["lo"] <= barrier["estimate"] <= barrier["hi"]
    figures = {p.name for p in (smol_run / "results/figures").glob("*.png")}
    assert figures == {
        "fig03_g1.png", "fig04_word_probabilities.png", "fig05_g1_vs_g2.png",
        "fig06_dexperts_vs_weights.png", "fig07_g3.png", "fig08_g3_nll.png",
        "fig12_comparison.png",
    }  # fmt: skip
