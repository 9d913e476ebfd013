"""Readers of the paper's datasets: SST-5 labels, C4 shards, DExperts prompt files."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from lmlerp.data import bpe as bpe_training
from lmlerp.data import paper as paper_data
from lmlerp.data.splits import assign_shares


def write_lines(path, records, compress=False):
    text = "".join(json.dumps(r) + "\n" for r in records)
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)


@pytest.fixture
def sst5(tmp_path):
    for split in ("train", "validation", "test"):
        records = [{"text": f"{split} sentence {label}", "label": label} for label in range(5)]
        write_lines(tmp_path / f"{split}.jsonl", records)
    return tmp_path


def test_sst5_labels_map_to_the_papers_sentiments_and_splits(sst5):
    movie = paper_data.sst5_movie(sst5)
    assert set(movie.split) == {"train", "val", "test"}
    by_label = dict(zip(movie.rating + 2, movie.sentiment, strict=True))
    assert by_label == {0: "negative", 1: "negative", 2: "neutral", 3: "positive", 4: "positive"}
    assert len(movie) == 15 and movie.id.is_unique
    assert list(movie.columns) == ["id", "rating", "text", "domain", "sentiment", "split"]


def test_sst5_refuses_a_missing_split_and_an_unknown_label(sst5):
    (sst5 / "test.jsonl").unlink()
    with pytest.raises(ValueError, match=r"split\(s\) \['test'\] missing"):
        paper_data.sst5_movie(sst5)
    write_lines(sst5 / "test.jsonl", [{"text": "odd", "label": 7}])
    with pytest.raises(ValueError, match="label 7 is not an SST-5 label"):
        paper_data.sst5_movie(sst5)


def write_c4_shards(directory, documents=30):
    for shard in range(2):
        records = [{"text": f"document {shard}-{k} " * 20, "url": "u"} for k in range(documents)]
        write_lines(directory / "en" / f"c4-train.0000{shard}-of-01024.json.gz", records, True)


def test_c4_shards_become_a_train_val_corpus_for_theta_c4(tmp_path):
    write_c4_shards(tmp_path / "c4")
    count = paper_data.write_c4_corpus(tmp_path / "c4", tmp_path / "a.parquet", 0.1, seed=0)
    corpus = pd.read_parquet(tmp_path / "a.parquet")
    assert count == len(corpus) == 60 and set(corpus.corpus) == {"theta_c4"}
    assert corpus.text.iloc[30] == "document 1-0 " * 19 + "document 1-0"  # shard order, normalised
    assert set(corpus.split) == {"train", "val"}
    assert 0 < (corpus.split == "val").mean() < 0.3
    paper_data.write_c4_corpus(tmp_path / "c4", tmp_path / "b.parquet", 0.1, seed=0)
    assert corpus.equals(pd.read_parquet(tmp_path / "b.parquet"))


def test_c4_corpus_is_written_row_group_by_row_group_with_the_same_rows(tmp_path, monkeypatch):
    write_c4_shards(tmp_path / "c4")
    paper_data.write_c4_corpus(tmp_path / "c4", tmp_path / "whole.parquet", 0.1, seed=0)
    monkeypatch.setattr(paper_data, "C4_ROWS_PER_GROUP", 7)
    paper_data.write_c4_corpus(tmp_path / "c4", tmp_path / "groups.parquet", 0.1, seed=0)
    assert pq.ParquetFile(tmp_path / "groups.parquet").num_row_groups == 9  # ⌈60 / 7⌉
    whole = pd.read_parquet(tmp_path / "whole.parquet")
    assert whole.equals(pd.read_parquet(tmp_path / "groups.parquet"))
    sizes = whole.text.str.len().tolist()
    assert whole.split.tolist() == assign_shares(sizes, {"train": 0.9, "val": 0.1}, 0)


def test_c4_corpus_of_one_document_is_refused(tmp_path):
    write_lines(tmp_path / "c4" / "en" / "c4-train.00000-of-01024.json.gz", [{"text": "x"}], True)
    with pytest.raises(ValueError, match="fewer than two C4 documents in 1 file"):
        paper_data.write_c4_corpus(tmp_path / "c4", tmp_path / "c.parquet", 0.1, seed=0)
    assert not (tmp_path / "c.parquet").exists()


def test_a_corrupt_json_line_is_named_by_file_and_line(tmp_path):
    path = tmp_path / "neutral.jsonl"
    path.write_text('{"prompt": {"text": "fine"}}\n{not json\n')
    with pytest.raises(ValueError, match=r"neutral\.jsonl:2: not a JSON line"):
        list(paper_data.json_lines(path))


def test_dexperts_prompts_are_sampled_verbatim_with_fixed_prompts(tmp_path):
    bpe = bpe_training.train(["the movie was good and the film was bad"] * 20, 300, 2)
    files = {}
    for kind in paper_data.PROMPT_KINDS:
        files[kind] = tmp_path / f"{kind}_prompts.jsonl"
        write_lines(files[kind], [{"prompt": {"text": f"{kind} prompt {k}"}} for k in range(10)])
    settings = {"neutral": 4, "positive": 2, "negative": 0, "fixed": ["The movie was"]}
    table = paper_data.dexperts_prompts(files, settings, bpe, np.random.default_rng(0))
    assert table.kind.value_counts().to_dict() == {"neutral": 4, "positive": 2, "fixed": 1}
    assert table[table.kind == "positive"].text.str.startswith("positive prompt").all()
    assert table.prompt_id.is_unique and (table.n_tokens > 0).all()
    again = paper_data.dexperts_prompts(files, settings, bpe, np.random.default_rng(0))
    assert table.equals(again)
    with pytest.raises(ValueError, match=r"prompts\.neutral: asked for 11"):
        paper_data.dexperts_prompts(
            files, {**settings, "neutral": 11}, bpe, np.random.default_rng(0)
        )
