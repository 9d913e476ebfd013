"""Prompt sets: word-boundary cuts, seeded sampling of prefixes, the assembled table."""

import numpy as np
import pandas as pd
import pytest
import toy_text

from lmlerp.data import bpe as bpe_training
from lmlerp.data import prompts

TAIL = "and everyone in the theatre said so after the long evening ended quietly."
TEXTS = toy_text.sentences(TAIL)
SETTINGS = {
    "neutral": 3,
    "positive": 2,
    "negative": 2,
    "min_tokens": 4,
    "max_tokens": 10,
    "fixed": ["The movie was", "A story"],
}


@pytest.fixture(scope="module")
def bpe():
    return bpe_training.train(TEXTS, vocab_size=300, min_frequency=2)


def ends_at_a_word_boundary(prefix: str, text: str) -> bool:
    return text.startswith(prefix) and (len(prefix) == len(text) or text[len(prefix)].isspace())


@pytest.mark.parametrize(
    "text",
    [
        TEXTS[0],
        "Xylophonic zebras quixotically juggled mercurial kumquats beside Afghan forces",
        "Ünïcödé naïveté, 電影 — the critic’s verdict was unfathomably idiosyncratic",
    ],
)
def test_cut_ends_at_a_word_boundary_with_at_least_min_tokens(bpe, text):
    ids = bpe.encode(text, add_special_tokens=False)
    assert len(ids) > 12  # rare words are split into several pieces
    for n in range(4, len(ids) + 1):  # sample_prefixes draws n from U{min_tokens..max_tokens}
        prefix, k = prompts.cut(text, bpe, n, min_tokens=4)
        assert ends_at_a_word_boundary(prefix, text), (n, prefix)
        assert prefix == bpe.decode(ids[:k]).rstrip()
        assert k >= 4
        assert prefix.strip()


def test_cut_moves_back_to_the_boundary_before_n_tokens(bpe):
    text = "The movie was wonderful " + TAIL
    ids = bpe.encode(text, add_special_tokens=False)
    k_was = len(bpe.encode("The movie was", add_special_tokens=False))
    n = k_was + 3
    assert not ends_at_a_word_boundary(bpe.decode(ids[:n]), text)  # a blind cut splits a word
    assert prompts.cut(text, bpe, n, min_tokens=1) == ("The movie was", k_was)


def test_cut_moves_forward_when_no_boundary_is_at_or_after_min_tokens(bpe):
    text = "Xylophonic zebras quixotically juggled"
    first_word = len(bpe.encode("Xylophonic", add_special_tokens=False))
    assert first_word > 2
    prefix, k = prompts.cut(text, bpe, 2, min_tokens=2)
    assert prefix == "Xylophonic"
    assert k == first_word


def test_cut_of_a_short_text_keeps_it_whole(bpe):
    k_all = len(bpe.encode("The movie was", add_special_tokens=False))
    assert prompts.cut("The movie was", bpe, k_all + 5, min_tokens=4) == ("The movie was", k_all)


def sample(bpe, seed: int, count: int = 12, kind: str = "positive") -> pd.DataFrame:
    ids = [f"movie-{i}" for i in range(len(TEXTS))]
    rng = np.random.default_rng(seed)
    return prompts.sample_prefixes(TEXTS, ids, count, bpe, 4, 10, rng, kind)


def test_sample_prefixes_rows_ids_and_lengths(bpe):
    table = sample(bpe, seed=0)
    assert table.columns.tolist() == ["prompt_id", "kind", "text", "n_tokens", "source_id"]
    assert len(table) == 12
    assert table.prompt_id.is_unique and table.source_id.is_unique
    assert table.prompt_id.iloc[0] == "positive-0000"
    assert (table.kind == "positive").all()
    assert table.n_tokens.between(4, 10).all()
    by_id = dict(zip([f"movie-{i}" for i in range(len(TEXTS))], TEXTS, strict=True))
    for row in table.itertuples():
        source = by_id[row.source_id]
        assert ends_at_a_word_boundary(row.text, source)
        assert len(row.text) < len(source)  # a strict prefix, with a continuation
        assert len(bpe.encode(row.text, add_special_tokens=False)) == row.n_tokens


def test_sample_prefixes_is_deterministic_for_a_seeded_rng(bpe):
    pd.testing.assert_frame_equal(sample(bpe, seed=3), sample(bpe, seed=3))
    assert not sample(bpe, seed=3).source_id.equals(sample(bpe, seed=4).source_id)


def test_sample_prefixes_names_the_kind_when_too_few_texts_are_long(bpe):
    texts = ["Ok.", "A story", TEXTS[0]]
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"negative prompts: asked for 2 but only 1 .*negative"):
        prompts.sample_prefixes(texts, ["a", "b", "c"], 2, bpe, 4, 10, rng, "negative")


def test_fixed_prompts_are_verbatim_with_their_token_count(bpe):
    table = prompts.fixed_prompts(["The movie was", "Ünïcödé"], bpe)
    assert table.prompt_id.tolist() == ["fixed-0000", "fixed-0001"]
    assert table.text.tolist() == ["The movie was", "Ünïcödé"]
    assert table.n_tokens.tolist() == [
        len(bpe.encode(t, add_special_tokens=False)) for t in table.text
    ]
    assert (table.kind == "fixed").all() and (table.source_id == "").all()


@pytest.fixture
def sources():
    heldout_text = " ".join(f"News item {i} reports that {TAIL}" for i in range(4))
    corpus = pd.DataFrame(
        {
            "doc_id": ["lee-0", "lee-1", "wiki-A"],
            "corpus": ["heldout", "theta0", "heldout"],
            "text": [heldout_text, "Never a prompt: " + TAIL, "Short.\n" + TEXTS[7]],
        }
    )
    sentiment = ["positive", "negative", "neutral"] * 10
    movie = pd.DataFrame(
        {
            "id": [f"movie-{i}" for i in range(30)],
            "text": TEXTS[:30],
            "sentiment": sentiment,
            "split": ["prompts"] * 24 + ["train"] * 6,
        }
    )
    return corpus, movie


def test_build_assembles_every_kind_with_unique_ids(bpe, sources):
    corpus, movie = sources
    table = prompts.build(corpus, movie, bpe, SETTINGS, np.random.default_rng(0))
    assert (
        table.kind.tolist() == ["neutral"] * 3 + ["positive"] * 2 + ["negative"] * 2 + ["fixed"] * 2
    )
    assert table.prompt_id.is_unique
    assert table.text[table.kind == "fixed"].tolist() == SETTINGS["fixed"]
    neutral = table.source_id[table.kind == "neutral"]
    assert neutral.str.match(r"^(lee-0|wiki-A)#\d+$").all()
    prompt_rows = movie[movie.split == "prompts"].set_index("id")
    for kind in ("positive", "negative"):
        chosen = table.source_id[table.kind == kind]
        assert (prompt_rows.loc[chosen, "sentiment"] == kind).all()


def test_build_is_deterministic_and_skips_kinds_asked_zero_times(bpe, sources):
    corpus, movie = sources
    first = prompts.build(corpus, movie, bpe, SETTINGS, np.random.default_rng(1))
    pd.testing.assert_frame_equal(
        first, prompts.build(corpus, movie, bpe, SETTINGS, np.random.default_rng(1))
    )
    settings = {**SETTINGS, "neutral": 0, "negative": 0}
    table = prompts.build(corpus, movie, bpe, settings, np.random.default_rng(1))
    assert table.kind.tolist() == ["positive", "positive", "fixed", "fixed"]


def test_build_refuses_an_empty_prompt_set(bpe, sources):
    settings = {**SETTINGS, "neutral": 0, "positive": 0, "negative": 0, "fixed": []}
    with pytest.raises(ValueError, match="prompt set is empty"):
        prompts.build(*sources, bpe, settings, np.random.default_rng(0))
