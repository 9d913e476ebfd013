"""Token files: ids round-trip through the memory map, windows read from it, empty refused."""

import itertools

import numpy as np
import pandas as pd
import pytest

from lmlerp.data import bpe as bpe_training
from lmlerp.data import tokens as packing
from lmlerp.io import atomic, tokens
from lmlerp.train import batches

TEXTS = [f"The {a} film was {b} today." for a, b in itertools.product(["old", "new"], "xyz" * 3)]


@pytest.fixture(scope="module")
def bpe():
    return bpe_training.train(TEXTS, vocab_size=300, min_frequency=2)


@pytest.mark.parametrize(("vocab", "dtype"), [(300, "<u2"), (50257, "<u2"), (70000, "<u4")])
def test_ids_round_trip_through_the_memory_map(tmp_path, vocab, dtype):
    chunks = [np.array([0, 5, vocab - 1]), np.array([], dtype=np.int64), np.arange(7) % vocab]
    count = tokens.write(tmp_path / "t.tokens", chunks, vocab)
    ids = tokens.read(tmp_path / "t.tokens")
    assert count == len(ids) == 10 and isinstance(ids, np.memmap) and ids.dtype == dtype
    assert ids.tolist() == [0, 5, vocab - 1, 0, 1, 2, 3, 4, 5, 6]
    assert tokens.header(tmp_path / "t.tokens")["vocab_size"] == vocab
    assert not ids.flags.writeable


def test_an_empty_corpus_is_refused_and_leaves_no_file(tmp_path):
    with pytest.raises(ValueError, match=r"empty\.tokens: no tokens to write: the corpus is empty"):
        tokens.write(tmp_path / "empty.tokens", [np.array([], dtype=np.int64)], 300)
    assert list(tmp_path.iterdir()) == []


def test_an_id_outside_the_vocabulary_is_refused(tmp_path):
    with pytest.raises(ValueError, match="id 300 outside the vocabulary of 300"):
        tokens.write(tmp_path / "t.tokens", [np.array([1, 300])], 300)


def test_a_truncated_or_foreign_file_is_named(tmp_path):
    tokens.write(tmp_path / "t.tokens", [np.arange(100)], 300)
    data = (tmp_path / "t.tokens").read_bytes()
    (tmp_path / "cut.tokens").write_bytes(data[:-2])
    with pytest.raises(ValueError, match=r"cut\.tokens: .* header promises .* \(truncated\?\)"):
        tokens.read(tmp_path / "cut.tokens")
    (tmp_path / "x.npy").write_bytes(b"\x93NUMPY" + b"\0" * 5000)
    with pytest.raises(ValueError, match=r"x\.npy: not a token file"):
        tokens.read(tmp_path / "x.npy")


def test_windows_read_from_the_memory_map_match_the_array(tmp_path):
    stream = np.random.default_rng(0).integers(0, 300, size=5000)
    tokens.write(tmp_path / "t.tokens", np.array_split(stream, 7), 300)
    mapped = tokens.read(tmp_path / "t.tokens")
    for (a, _, _), (b, _, _) in zip(
        itertools.islice(batches.block_batches(mapped, 4, 16, seed=3), 5),
        itertools.islice(batches.block_batches(stream, 4, 16, seed=3), 5),
        strict=True,
    ):
        assert a.shape == (4, 16) and a.tolist() == b.tolist()
        for row in a.tolist():  # each row is a contiguous window of the stream
            start = next(i for i in range(len(stream)) if stream[i : i + 16].tolist() == row)
            assert stream[start : start + 16].tolist() == row


def test_document_ids_pack_each_document_then_eos_batch_by_batch(bpe):
    out = list(packing.document_ids(bpe, [TEXTS[:2], TEXTS[2:5]]))
    assert len(out) == 2 and out[0].dtype == np.int64
    eos = bpe.eos_token_id
    expected = [i for t in TEXTS[:5] for i in (*bpe.encode(t, add_special_tokens=False), eos)]
    assert np.concatenate(out).tolist() == expected


def test_corpus_texts_stream_one_corpus_split_in_table_order(tmp_path):
    frame = pd.DataFrame(
        {
            "doc_id": [f"d{k}" for k in range(10)],
            "corpus": ["theta0", "theta_c4"] * 5,
            "split": ["train"] * 8 + ["val"] * 2,
            "text": [f"text {k}" for k in range(10)],
        }
    )
    atomic.write_parquet(tmp_path / "corpus.parquet", frame)
    texts = list(packing.corpus_texts(tmp_path / "corpus.parquet", "theta0", "train", 3))
    assert texts == [["text 0", "text 2"], ["text 4"], ["text 6"]]  # batches of 3 rows, filtered
    assert list(packing.corpus_texts(tmp_path / "corpus.parquet", "theta0", "val")) == [["text 8"]]
