"""The paper-scale DAG for real, on local directories standing in for the hub: a hub θ0 in the
hub's own layout (unprefixed GPT2Model names, no lm_head, shards; its tokenizer replaces the
trained one), SST-5 and C4 in their hub layouts, DExperts prompt files,
and transformer judges (tiny random RoBERTa classifiers and a GPT-2 judge LM)."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from tiny_hub import save_hub_layout, write_hub
from workflow_helpers import TINY, prepare_workdir, snakemake

from lmlerp.data import bpe as bpe_training
from lmlerp.io import checkpoints
from lmlerp.io import tokenizer as tok
from lmlerp.train import pretrain

pytestmark = pytest.mark.workflow
WORDS = {
    4: ["wonderful", "charming", "moving", "brilliant"],
    3: ["good", "pleasant", "fine", "nice"],
    2: ["ordinary", "average", "plain", "usual"],
    1: ["dull", "slow", "weak", "flat"],
    0: ["awful", "dreadful", "boring", "terrible"],
}
SCORES = ("sentiment", "grammar", "judge_lm")
SUBJECTS = ["The movie", "This film", "The plot", "The acting", "Our story", "The ending"]


def sentences(label: int) -> list[str]:
    return [
        f"{s} was {w} and {v} today."
        for s, w, v in itertools.product(SUBJECTS, WORDS[label], WORDS[label])
    ]


def write_lines(path: Path, records: list[dict], compress: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in records)
    path.write_bytes(gzip.compress(text.encode()) if compress else text.encode())


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory) -> dict[str, Path]:
    """Local directories laid out like the hub repositories of configs/paper.yaml."""
    root = tmp_path_factory.mktemp("hub")
    everything = [t for label in WORDS for t in sentences(label)]
    bpe = bpe_training.train(everything * 3, vocab_size=400, min_frequency=2)
    arch = yaml.safe_load(TINY.read_text())["model"]
    theta0 = pretrain.gpt2(len(bpe), bpe.eos_token_id, arch, seed=5)
    save_hub_layout(theta0, bpe, root / "gpt2", max_shard_size=20_000)  # gpt2-large's layout
    for k, split in enumerate(("train", "validation", "test")):
        records = [
            {"text": text, "label": label}
            for label in WORDS
            for j, text in enumerate(sentences(label))
            if j % 3 == k or split == "train"
        ]
        write_lines(root / "sst5" / f"{split}.jsonl", records)
    docs = [{"text": " ".join(everything[i : i + 12])} for i in range(0, len(everything), 12)]
    write_lines(root / "c4" / "en" / "c4-train.00000-of-01024.json.gz", docs, compress=True)
    write_lines(root / "c4" / "en" / "c4-train.00001-of-01024.json.gz", docs[:3], compress=True)
    for kind, label in (("neutral", 2), ("positive", 4), ("negative", 0)):
        prompts = [{"prompt": {"text": t.rsplit(" ", 3)[0]}} for t in sentences(label)]
        write_lines(root / "prompts" / f"{kind}_prompts.jsonl", prompts)
    write_hub(root / "judges")
    return {"root": root, "tokenizer": root / "gpt2", "c4_documents": len(docs)}


@pytest.fixture(scope="module")
def paper_like_run(stand_ins, tmp_path_factory) -> Path:
    root = stand_ins["root"]
    config = yaml.safe_load(TINY.read_text())
    config["hub"] = {
        "offline": True,
        "models": {
            "theta0": {"path": str(root / "gpt2")},
            **{name: {"path": str(root / "judges" / name)} for name in SCORES},
        },
        "datasets": {
            "movie": {"path": str(root / "sst5")},
            "corpus": {"path": str(root / "c4"), "files": ["en/c4-train.00000-of-01024.json.gz"]},
        },
        "prompts": {
            kind: {"location": str(root / "prompts" / f"{kind}_prompts.jsonl")}
            for kind in ("neutral", "positive", "negative")
        },
    }
    config["scorers"].update(dict.fromkeys(SCORES, "transformers"))
    config["pretrain"].update(steps=12, warmup_steps=2)
    config["finetune"].update(lr=[3.0e-3], steps=[12], batch_size=[16], micro_batch_size=8)
    # a hub θ0 has no pretraining budget to vary: connect the seeds of θ0 itself
    config["connectivity"]["models"] = {"theta0": {"pretrain_steps": config["pretrain"]["steps"]}}
    config["connectivity"]["curves"]["model"] = "theta0"
    # the connectivity stages are the tiny run's; here two seeds and the LM curve (θ± from the
    # hub θ0) keep them in the DAG at the least cost
    config["connectivity"]["seeds"] = [42, 43]
    config["connectivity"]["curves"]["pairs"] = ["theta_pos_neg"]
    work = prepare_workdir(tmp_path_factory.mktemp("paper-like"))
    configfile = work / "paper-like.yaml"
    configfile.write_text(yaml.safe_dump(config))
    result = snakemake(work, configfile=configfile)
    assert result.returncode == 0, result.stderr[-5000:]
    return work


def test_hub_theta0_is_fetched_and_nothing_offline_is_built(paper_like_run, stand_ins):
    manifest = json.loads((paper_like_run / "resources/hub/theta0/fetch.json").read_text())
    assert manifest["path"] == str((stand_ins["root"] / "gpt2").resolve())
    for built in ("tokenizer", "models/theta0", "judge", "models/judge_lm"):
        assert not (paper_like_run / "results" / built).exists(), built
    resources = paper_like_run / "resources"
    assert sorted(p.name for p in resources.iterdir() if p.name != "resume") == ["downloads", "hub"]
    assert not any((resources / "resume").rglob("state.json"))  # finished jobs left no state


def test_summary_and_tables_come_from_the_transformer_judges(paper_like_run, stand_ins):
    summary = json.loads((paper_like_run / "results" / "summary.json").read_text())
    assert set(summary["models"]) == {"theta_c4", "theta_pos", "theta_neg"}
    assert summary["judge"] == {}  # nothing trained here: the judges are hub models
    sources = summary["sources"]
    assert sources["theta0"] == str(stand_ins["root"] / "gpt2") and sources["reference"] == "θ0"
    assert sources["sentiment"] == str(stand_ins["root"] / "judges" / "sentiment")
    for family in ("g1", "g2", "g3", "decorrelated", "dexperts"):
        table = pd.read_parquet(paper_like_run / "results" / "tables" / f"{family}.parquet")
        assert table.positive_score.between(0, 1).all(), family
        assert table.grammar.between(0, 1).all() and table.grammar.gt(0).all(), family
        assert (table.perplexity > 1).all(), family
    recipe = paper_like_run / "results/evaluate/g3/c0/recipes"
    assert all("resources/hub/theta0" in p.read_text() for p in recipe.rglob("recipe.json"))


def test_every_model_speaks_the_hub_theta0_tokenizer(paper_like_run, stand_ins):
    expected = tok.fingerprint(tok.load(stand_ins["tokenizer"]))
    for name in ("theta_pos", "theta_c4"):
        assert tok.fingerprint(tok.load(paper_like_run / "results/models" / name)) == expected


def test_finetuned_model_starts_from_the_hub_theta0(paper_like_run):
    fetched = paper_like_run / "resources/hub/theta0"
    assert (fetched / checkpoints.INDEX).is_file()  # the hub layout reached the run as it is
    theta0 = checkpoints.load(fetched).state_dict()
    theta_pos = checkpoints.load(paper_like_run / "results/models/theta_pos").state_dict()
    assert {k: v.shape for k, v in theta0.items()} == {k: v.shape for k, v in theta_pos.items()}
    assert any(not theta0[k].equal(theta_pos[k]) for k in theta0)


def test_sst5_and_c4_become_the_movie_table_and_the_corpus(paper_like_run, stand_ins):
    movie = pd.read_parquet(paper_like_run / "results/prepare/movie.parquet")
    assert set(movie.split) == {"train", "val", "test"} and movie.id.str.startswith("sst5-").all()
    corpus = pd.read_parquet(paper_like_run / "results/prepare/corpus.parquet")
    assert set(corpus.corpus) == {"theta_c4"}
    assert len(corpus) == stand_ins["c4_documents"]  # the second shard was not asked for


def test_prompts_come_from_the_dexperts_files(paper_like_run):
    prompts = pd.read_parquet(paper_like_run / "results/prepare/prompts.parquet")
    assert prompts.kind.value_counts().to_dict() == {
        "neutral": 4,
        "positive": 2,
        "negative": 2,
        "fixed": 1,
    }
    assert prompts[prompts.kind == "positive"].text.str.contains("|".join(WORDS[4])).all()
