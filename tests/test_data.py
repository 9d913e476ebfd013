"""Offline data: reading VADER files, deterministic disjoint splits, the pretraining corpora."""

import bz2
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from lmlerp.data import corpus as data_corpus
from lmlerp.data import movie as data_movie
from lmlerp.data import splits as data_splits
from lmlerp.data.movie import rating_to_label

MOVIE_SHARES = {"judge": 0.3, "train": 0.5, "val": 0.06, "test": 0.08, "prompts": 0.06}
CORPUS_SHARES = {"theta0": 0.46, "theta_c4": 0.46, "heldout": 0.08}


# --- read_rated ---------------------------------------------------------------------------


def test_read_rated_parses_crlf_quotes_duplicates_and_prefixes_ids(tmp_path):
    path = tmp_path / "movie.tsv"
    path.write_bytes(
        b"1\t2.5\tThe film ''rocks'' , truly .\r\n"
        b"2\t-1.25\tDull   and\tslow .\r\n"
        b"3\t0.5\tThe film ''rocks'' , truly .\r\n"
        b"not a row\r\n"
        b"4\t0.0\t   \r\n"
        b"5\t3.0\tcaf\xc3\xa9 bliss\r\n"
    )
    frame = data_movie.read_rated(path, "movie")
    assert frame.columns.tolist() == ["id", "rating", "text", "domain"]
    assert frame.id.tolist() == ["movie-1", "movie-2", "movie-5"]
    assert frame.rating.tolist() == [2.5, -1.25, 3.0]
    assert frame.text.tolist() == ['The film "rocks" , truly .', "Dull and slow .", "café bliss"]
    assert (frame.domain == "movie").all()
    assert not frame.text.str.contains("\r").any()


def test_read_rated_refuses_a_file_without_rows(tmp_path):
    path = tmp_path / "empty.tsv"
    path.write_text("just some text\nwithout tabs\n")
    with pytest.raises(ValueError, match=r"empty\.tsv: no 'id<TAB>rating<TAB>text' rows"):
        data_movie.read_rated(path, "tweets")


# --- assign_shares ------------------------------------------------------------------------


def test_assign_shares_is_deterministic_per_seed():
    sizes = list(range(1, 201))
    first = data_splits.assign_shares(sizes, MOVIE_SHARES, seed=7)
    assert first == data_splits.assign_shares(sizes, MOVIE_SHARES, seed=7)
    assert first != data_splits.assign_shares(sizes, MOVIE_SHARES, seed=8)


def test_assign_shares_covers_every_item_once_with_sizes_near_the_shares():
    out = data_splits.assign_shares([1] * 1000, MOVIE_SHARES, seed=0)
    assert len(out) == 1000
    assert set(out) == set(MOVIE_SHARES)
    counts = Counter(out)
    for name, share in MOVIE_SHARES.items():
        assert abs(counts[name] - 1000 * share) <= 10, (name, counts[name])


def test_assign_shares_weighs_items_by_size():
    sizes = [1] * 500 + [10] * 50  # half the total size in 50 large items
    out = data_splits.assign_shares(sizes, {"a": 0.5, "b": 0.5}, seed=3)
    filled = {name: sum(s for s, o in zip(sizes, out, strict=True) if o == name) for name in "ab"}
    assert filled["a"] + filled["b"] == 1000
    assert abs(filled["a"] - 500) <= 10


def test_assign_shares_gives_nothing_to_a_zero_share():
    out = data_splits.assign_shares([1] * 100, {"a": 0.7, "b": 0.0, "c": 0.3}, seed=0)
    assert "b" not in out
    assert Counter(out) == {"a": 70, "c": 30}


def test_assign_shares_refuses_all_zero_shares():
    with pytest.raises(ValueError, match="every share is zero"):
        data_splits.assign_shares([1, 2, 3], {"a": 0.0, "b": 0.0}, seed=0)


# --- split_movie --------------------------------------------------------------------------


def movie_frame(n_pos: int = 300, n_neg: int = 200, n_neutral: int = 100) -> pd.DataFrame:
    ratings = [2.0] * n_pos + [-2.0] * n_neg + [0.0] * n_neutral
    return pd.DataFrame(
        {
            "id": [f"movie-{i}" for i in range(len(ratings))],
            "rating": ratings,
            "text": [f"sentence number {i}" for i in range(len(ratings))],
            "domain": "movie",
        }
    )


def test_split_movie_threshold_edges_belong_to_the_sentiment():
    movie = pd.DataFrame(
        {
            "id": list("abcdef"),
            "rating": [1.0, -1.0, 0.99, -0.99, 1.01, -4.0],
            "text": list("abcdef"),
        }
    )
    out = data_movie.split_movie(movie, MOVIE_SHARES, threshold=1.0, seed=0)
    expected = ["positive", "negative", "neutral", "neutral", "positive", "negative"]
    assert out.sentiment.tolist() == expected


def test_split_movie_keeps_the_class_balance_in_every_split():
    out = data_movie.split_movie(movie_frame(), MOVIE_SHARES, threshold=1.0, seed=0)
    assert (out.split != "").all()
    for sentiment, n in (("positive", 300), ("negative", 200), ("neutral", 100)):
        counts = Counter(out.split[out.sentiment == sentiment])
        for name, share in MOVIE_SHARES.items():
            assert abs(counts[name] - n * share) <= 1, (sentiment, name, counts[name])


def test_split_movie_is_deterministic_and_keeps_the_rows():
    movie = movie_frame()
    first = data_movie.split_movie(movie, MOVIE_SHARES, threshold=1.0, seed=4)
    pd.testing.assert_frame_equal(first, data_movie.split_movie(movie, MOVIE_SHARES, 1.0, seed=4))
    assert first.id.tolist() == movie.id.tolist()
    assert not first.split.equals(data_movie.split_movie(movie, MOVIE_SHARES, 1.0, seed=5).split)


# --- build_corpus -------------------------------------------------------------------------

WIKI_HEADER = (
    '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10">\n'
    "<siteinfo><sitename>Wikipedia</sitename></siteinfo>\n"
)
LONG = "The quick brown fox jumps over the lazy dog near the river bank every morning."


def wiki_page(page_id: int, title: str, text: str, ns: int = 0) -> str:
    return (
        f"<page><title>{title}</title><ns>{ns}</ns><id>{page_id}</id>"
        f"<revision><id>{page_id}0</id><text>{text}</text></revision></page>\n"
    )


def write_wiki(path, pages: list[str]) -> None:
    path.write_bytes(bz2.compress((WIKI_HEADER + "".join(pages) + "</mediawiki>\n").encode()))


@pytest.fixture
def wiki(tmp_path):
    body = (
        "'''Alpha''' is a [[Greek alphabet|letter]] of the ''Greek'' alphabet used in "
        "science and [[mathematics]] today.\n\n== History ==\n" + LONG
    )
    pages = [
        wiki_page(1, "Alpha", body),
        wiki_page(2, "Beta", f"Beta is the second letter. {LONG}\n{LONG}"),
        wiki_page(3, "Old alpha", "#REDIRECT [[Alpha]]"),
        wiki_page(4, "Talk:Alpha", f"Discussion page. {LONG}", ns=1),
        wiki_page(5, "Gamma", f"Gamma is the third letter of the alphabet, {LONG}"),
    ]
    path = tmp_path / "enwiki.xml.bz2"
    write_wiki(path, pages)
    return path


@pytest.fixture
def lee(tmp_path):
    path = tmp_path / "lee_background.cor"
    lines = [f"News story {i} says: {LONG} " * (1 + i % 3) for i in range(40)]
    path.write_text("\n".join(lines[:20]) + "\n\n" + "\n".join(lines[20:]) + "\n")
    return path


def test_wikipedia_articles_skips_redirects_and_other_namespaces_and_cleans_markup(wiki):
    articles = dict(data_corpus.wikipedia_articles(wiki))
    assert list(articles) == ["Alpha", "Beta", "Gamma"]
    alpha = articles["Alpha"]
    assert alpha.startswith("Alpha is a letter of the Greek alphabet used in science and")
    for markup in ("'", "[[", "]]", "|", "=="):
        assert markup not in alpha
    assert "History" not in alpha  # a heading is shorter than eight words
    assert alpha.split("\n")[1] == LONG


def test_build_corpus_splits_documents_disjointly(wiki, lee):
    frame = data_corpus.build_corpus(wiki, lee, CORPUS_SHARES, val_fraction=0.2, seed=0)
    assert frame.columns.tolist() == ["doc_id", "source", "corpus", "split", "text"]
    assert len(frame) == 3 + 40
    assert frame.doc_id.is_unique
    assert set(frame.corpus) == set(CORPUS_SHARES)
    assert frame.groupby("text").corpus.nunique().max() == 1  # no document in two corpora
    assert "wiki-Old alpha" not in set(frame.doc_id)
    assert set(frame.source) == {"wikipedia", "lee"}


def test_build_corpus_has_val_only_inside_the_pretraining_corpora(wiki, lee):
    frame = data_corpus.build_corpus(wiki, lee, CORPUS_SHARES, val_fraction=0.2, seed=0)
    assert (frame.split[frame.corpus == "heldout"] == "train").all()
    for name in ("theta0", "theta_c4"):
        splits = Counter(frame.split[frame.corpus == name])
        assert splits["val"] >= 1 and splits["train"] > splits["val"], (name, splits)


def test_build_corpus_is_deterministic(wiki, lee):
    first = data_corpus.build_corpus(wiki, lee, CORPUS_SHARES, val_fraction=0.2, seed=5)
    pd.testing.assert_frame_equal(first, data_corpus.build_corpus(wiki, lee, CORPUS_SHARES, 0.2, 5))


def test_build_corpus_names_a_corpus_without_documents(tmp_path):
    wiki = tmp_path / "wiki.xml.bz2"
    write_wiki(wiki, [wiki_page(1, "Only", LONG), wiki_page(2, "R", "#redirect [[Only]]")])
    lee = tmp_path / "lee.cor"
    lee.write_text("\n\n")
    with pytest.raises(ValueError, match=r"corpus '(theta_c4|heldout)' received no document"):
        data_corpus.build_corpus(wiki, lee, CORPUS_SHARES, val_fraction=0.2, seed=0)


# --- sentences ----------------------------------------------------------------------------


def test_sentences_split_and_filter_by_word_count():
    text = (
        "Short one here. This second sentence easily has more than eight words in it! "
        'And "quoted" starts count: one two three four five six.\nTiny line.'
    )
    assert data_corpus.sentences(text) == [
        "This second sentence easily has more than eight words in it!",
        'And "quoted" starts count: one two three four five six.',
    ]
    assert data_corpus.sentences(text, min_words=1)[0] == "Short one here."
    assert data_corpus.sentences(text, min_words=1)[-1] == "Tiny line."


# --- judge_data ---------------------------------------------------------------------------


@pytest.fixture
def movie_split():
    rng = np.random.default_rng(0)
    movie = movie_frame().assign(rating=rng.uniform(-4, 4, 600).round(2))
    return data_movie.split_movie(movie, MOVIE_SHARES, threshold=1.0, seed=0)


def other_domain(domain: str, n: int) -> pd.DataFrame:
    ratings = np.linspace(-3, 3, n)
    return pd.DataFrame(
        {
            "id": [f"{domain}-{i}" for i in range(n)],
            "rating": ratings,
            "text": [f"{domain} text {i}" for i in range(n)],
            "domain": domain,
        }
    )


def test_judge_data_uses_only_the_reserved_movie_split(movie_split):
    tweets, nyt = other_domain("tweets", 30), other_domain("nyt", 20)
    frame = data_movie.judge_data(
        movie_split, [tweets, nyt], neutral_band=0.5, test_fraction=0.2, seed=0
    )
    judge_ids = set(movie_split.id[movie_split.split == "judge"])
    movie_rows = frame[frame.domain == "movie"]
    assert set(movie_rows.id) == judge_ids
    assert len(frame) == len(judge_ids) + 50
    assert (frame.split[frame.domain != "movie"] == "train").all()
    assert set(frame.split[frame.domain == "movie"]) == {"train", "test"}
    assert abs((movie_rows.split == "test").mean() - 0.2) < 0.02
    assert frame.label.tolist() == [rating_to_label(r, 0.5) for r in frame.rating]
    assert set(frame.label) == {0, 1, 2}


def test_judge_data_without_movie_keeps_only_its_test_rows(movie_split):
    tweets = other_domain("tweets", 30)
    full = data_movie.judge_data(movie_split, [tweets], 0.5, 0.2, seed=0)
    test_only = data_movie.judge_data(movie_split, [tweets], 0.5, 0.2, seed=0, use_movie=False)
    movie_rows = test_only[test_only.domain == "movie"]
    assert (movie_rows.split == "test").all()
    assert set(movie_rows.id) == set(full.id[(full.domain == "movie") & (full.split == "test")])
    assert (test_only.domain == "tweets").sum() == 30


def test_judge_data_refuses_an_empty_test_split(movie_split):
    no_judge = movie_split[movie_split.split != "judge"]
    with pytest.raises(ValueError, match=r"movie test split is empty.*movie_splits\.judge"):
        data_movie.judge_data(no_judge, [other_domain("tweets", 10)], 0.5, 0.2, seed=0)
