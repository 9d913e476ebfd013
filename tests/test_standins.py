"""The paper-smoke stand-ins (lmlerp.data.standins) and the paper DAG's cost (report.cost)."""

from __future__ import annotations

import json

import pytest
import yaml
from safetensors import safe_open
from workflow_helpers import REPO, prepare_workdir, snakemake

from lmlerp.connectivity.examples import read_glue
from lmlerp.data import paper, standins
from lmlerp.report import cost

DOWNLOADS = REPO / "resources" / "downloads"


@pytest.fixture(scope="module")
def vocabulary():
    return standins.gpt2_vocabulary(standins.fetch_encoder_files(DOWNLOADS))


@pytest.fixture(scope="module")
def default_assets(tmp_path_factory):
    """The offline default's VADER and Lee texts, through its own download rule."""
    work = prepare_workdir(tmp_path_factory.mktemp("assets"))
    result = snakemake(work, "resources/vader", "resources/gensim")
    assert result.returncode == 0, result.stderr[-3000:]
    return work / "resources"


def test_the_tokenizer_is_gpt2s_byte_level_bpe(vocabulary):
    tokenizer = standins.gpt2_tokenizer(*vocabulary)
    assert len(tokenizer) == 50257 and tokenizer.eos_token_id == 50256
    assert tokenizer.encode("The movie was great!") == [464, 3807, 373, 1049, 0]  # GPT-2's ids
    assert tokenizer.pad_token is None  # as the hub's: our code must not assume one


def test_roberta_tokenizer_wraps_the_same_bpe_in_its_specials(vocabulary):
    tokenizer = standins.roberta_tokenizer(*vocabulary)
    ids = tokenizer("The movie was great!").input_ids
    assert ids[0] == tokenizer.bos_token_id == 0 and ids[-1] == tokenizer.eos_token_id == 2
    assert tokenizer.pad_token_id == 1 and tokenizer.decode(ids[1:-1]) == "The movie was great!"
    assert len(tokenizer) <= standins.ROBERTA_BASE["vocab_size"]


def test_gpt2_is_written_in_the_hub_layout(vocabulary, tmp_path):
    tokenizer = standins.gpt2_tokenizer(*vocabulary)
    standins.write_gpt2(tmp_path / "distilgpt2", "distilgpt2", tokenizer, seed=0)
    config = json.loads((tmp_path / "distilgpt2" / "config.json").read_text())
    assert config["architectures"] == ["GPT2LMHeadModel"] and config["n_layer"] == 6
    with safe_open(tmp_path / "distilgpt2" / "model.safetensors", "pt") as weights:
        names = set(weights.keys())
        assert tuple(weights.get_slice("wte.weight").get_shape()) == (50257, 768)
    assert "h.0.attn.c_attn.weight" in names and "ln_f.weight" in names
    assert not any(n.startswith("transformer.") or n.startswith("lm_head") for n in names)


def test_sst5_labels_cut_the_vader_rating_in_five():
    ratings = [-3.0, -2.0, -1.0, 0.0, 0.5, 1.9, 2.0, 3.5]
    assert [standins.sst5_label(r) for r in ratings] == [0, 1, 1, 2, 3, 3, 4, 4]


def test_data_stand_ins_read_as_the_paper_datasets(default_assets, tmp_path):
    movie_tsv = default_assets / "vader/movie.tsv"
    lee = default_assets / "gensim/lee_background.cor"
    counts = standins.write_data(tmp_path, movie_tsv, lee, 0)
    movie = paper.sst5_movie(tmp_path / "sst5")
    assert len(movie) == counts["sst5"] and set(movie.split) == {"train", "val", "test"}
    assert movie.groupby("split").size()["train"] == pytest.approx(0.8 * len(movie), abs=2)
    assert len(list(paper.c4_documents(tmp_path / "c4"))) == counts["c4"] == 300
    glue, dropped = read_glue(tmp_path / "QQP" / "train.tsv", "glue_qqp")
    assert len(glue) == dropped["lines"] == counts["qqp"] and dropped["unreadable"] == 0
    prompts = list(paper.json_lines(tmp_path / "prompts" / "positive_prompts.jsonl"))
    assert prompts and all(len(p["prompt"]["text"].split()) <= 8 for p in prompts)


def test_paper_smoke_config_is_the_paper_config_at_small_counts():
    smoke = yaml.safe_load((REPO / "configs/paper-smoke.yaml").read_text())
    full = yaml.safe_load((REPO / "configs/paper.yaml").read_text())
    assert set(smoke) == set(full)  # complete: it replaces the default as the paper's does
    judges = ("sentiment", "grammar", "judge_lm")
    assert all(smoke["scorers"][k] == full["scorers"][k] == "transformers" for k in judges)
    assert smoke["model"] == full["model"]  # GPT-C4: the DistilGPT-2 architecture
    assert set(smoke["hub"]["models"]) == set(full["hub"]["models"])
    assert smoke["hub"]["offline"] is True


def test_parameter_counts_are_the_paper_models():
    assert cost.parameters("gpt2-large") == 774_030_080
    assert cost.parameters("gpt2-xl") == 1_557_611_200
    assert cost.parameters("distilgpt2") == 81_912_576
    assert 124e6 < cost.parameters("roberta-base") < 126e6


def test_workload_follows_the_config():
    config = yaml.safe_load((REPO / "configs/paper.yaml").read_text())
    encoders = {"roberta-base": "roberta-base"}
    config["connectivity"]["models"] = {"roberta-base": {}}
    stages = {s["stage"]: s for s in cost.workload(config, encoders)}
    grid = stages["fine-tuning grid (θ+, θ−)"]
    assert grid["bytes"] == 72 * cost.parameters("gpt2-large") * cost.FP32  # 72 kept candidates
    pre = config["pretrain"]
    pretrain_tokens = pre["steps"] * pre["batch_size"] * pre["block_size"]
    assert stages["pretrain GPT-C4"]["tokens"] == pretrain_tokens
    config["generation"]["samples_per_prompt"] *= 2
    doubled = {s["stage"]: s for s in cost.workload(config, encoders)}
    sampling = "sampling (every point)"
    assert doubled[sampling]["decode_tokens"] == 2 * stages[sampling]["decode_tokens"]
    priced = cost.gpu_hours(list(stages.values()), {k: v for k, (v, _) in cost.ESTIMATES.items()})
    assert all(s["gpu_hours"] >= 0 for s in priced)
    assert max(priced, key=lambda s: s["gpu_hours"])["stage"] == "pretrain GPT-C4"
