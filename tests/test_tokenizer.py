"""The shared byte-level BPE: training, round trips, save/load and its fingerprint."""

import pytest
from toy_text import TEXTS

from lmlerp.data import bpe as bpe_training
from lmlerp.io import tokenizer as tok


@pytest.fixture(scope="module")
def bpe():
    return bpe_training.train(TEXTS, vocab_size=300, min_frequency=2)


def test_vocabulary_is_at_most_the_requested_size_and_holds_all_bytes(bpe):
    assert 256 < len(bpe) <= 300
    assert len(bpe.get_vocab()) == len(bpe)


def test_eos_is_bos_pad_and_unk_and_resolves_to_an_id(bpe):
    eos_id = bpe.convert_tokens_to_ids(tok.EOS)
    assert isinstance(eos_id, int) and 0 <= eos_id < len(bpe)
    assert bpe.eos_token == bpe.bos_token == bpe.pad_token == tok.EOS
    assert bpe.eos_token_id == bpe.bos_token_id == bpe.pad_token_id == eos_id
    assert bpe.encode(tok.EOS, add_special_tokens=False) == [eos_id]


def test_training_merges_frequent_words(bpe):
    assert len(bpe.encode(" wonderful", add_special_tokens=False)) < len(" wonderful")


@pytest.mark.parametrize(
    "text",
    [
        "The movie was wonderful today.",
        "Ünïcödé 電影 was 🎬 naïve — “quoted”  spaces\tand\nlines",
        " leading space kept",
    ],
)
def test_encode_decode_round_trip(bpe, text):
    ids = bpe.encode(text, add_special_tokens=False)
    assert bpe.decode(ids) == text


def test_save_load_round_trip_gives_identical_ids(bpe, tmp_path):
    tok.save(bpe, tmp_path / "tokenizer")
    loaded = tok.load(tmp_path / "tokenizer")
    text = "The critic felt 電影 was moving<|endoftext|>A story"
    assert loaded.encode(text, add_special_tokens=False) == bpe.encode(
        text, add_special_tokens=False
    )
    assert loaded.eos_token_id == loaded.pad_token_id == bpe.eos_token_id
    assert not list(tmp_path.glob(".tokenizer.*"))  # no temporary sibling left behind


def test_fingerprint_is_stable_and_tells_tokenizers_apart(bpe, tmp_path):
    tok.save(bpe, tmp_path / "tokenizer")
    assert tok.fingerprint(tok.load(tmp_path / "tokenizer")) == tok.fingerprint(bpe)
    assert tok.fingerprint(bpe_training.train(TEXTS, 300, 2)) == tok.fingerprint(bpe)
    other = bpe_training.train([t.upper() for t in TEXTS], vocab_size=300, min_frequency=2)
    assert tok.fingerprint(other) != tok.fingerprint(bpe)
    assert len(tok.fingerprint(bpe)) == 16
