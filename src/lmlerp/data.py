"""Offline data: VADER's rated sentences and general English text, split deterministically.

Sources (DESIGN §3): the VADER ground truth (Hutto & Gilbert 2014) gives 10,605 Rotten Tomatoes
sentences with a mean human rating in [−4, 4] — the same source as SST, which the paper uses — plus
tweets, Amazon and NYT snippets; gensim's test data gives 106 Wikipedia articles and 300 Lee news
articles for pretraining θ0 and θC4 on disjoint documents.
"""

from __future__ import annotations

import bz2
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lmlerp.judge import rating_to_label

_SPACES = re.compile(r"\s+")
_WIKI_BOLD = re.compile(r"'{2,}")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")


def normalise(text: str) -> str:
    """Collapse whitespace and turn the `''` quote convention of both sources into `"`."""
    return _SPACES.sub(" ", text.replace("''", '"')).strip()


def read_rated(path: str | Path, domain: str) -> pd.DataFrame:
    """Read one VADER ground-truth file (TSV: id, mean rating, text; CRLF line ends).

    Returns columns id, rating, text, domain; empty texts are dropped, duplicate texts keep their
    first occurrence so that one sentence can never land in two splits.
    """
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = line.split("\t", 2)
        if len(parts) != 3:
            continue
        text = normalise(parts[2])
        if text:
            rows.append((f"{domain}-{parts[0]}", float(parts[1]), text))
    if not rows:
        raise ValueError(f"{path}: no 'id<TAB>rating<TAB>text' rows found")
    frame = pd.DataFrame(rows, columns=["id", "rating", "text"]).assign(domain=domain)
    return frame.drop_duplicates("text", keep="first").reset_index(drop=True)


def assign_shares(sizes: Sequence[int], shares: Mapping[str, float], seed: int) -> list[str]:
    """Assign items to named splits so that each split's total size approaches its share.

    Items are visited in a seeded random order and each goes to the split furthest below its
    target (target − current, in size units). Deterministic for a given seed; splits are disjoint.
    """
    names = [name for name, share in shares.items() if share > 0]
    if not names:
        raise ValueError("every share is zero")
    total = float(sum(sizes))
    targets = np.array([shares[name] * total for name in names])
    filled = np.zeros(len(names))
    out = [""] * len(sizes)
    for i in np.random.default_rng(seed).permutation(len(sizes)):
        deficit = (targets - filled) / np.maximum(targets, 1e-12)
        k = int(np.argmax(deficit))
        out[i] = names[k]
        filled[k] += sizes[i]
    return out


def split_movie(movie: pd.DataFrame, shares: Mapping[str, float], threshold: float, seed: int):
    """Label movie sentences by sentiment and split them into disjoint sets.

    sentiment = positive if rating ≥ threshold, negative if rating ≤ −threshold, else neutral
    (neutral sentences are never used for fine-tuning). Splits are drawn per sentiment so that each
    split keeps the class balance.
    """
    sentiment = np.where(
        movie.rating >= threshold,
        "positive",
        np.where(movie.rating <= -threshold, "negative", "neutral"),
    )
    out = movie.assign(sentiment=sentiment, split="")
    for offset, label in enumerate(("positive", "negative", "neutral")):
        rows = out.index[out.sentiment == label]
        out.loc[rows, "split"] = assign_shares([1] * len(rows), shares, seed + offset)
    return out


def wikipedia_articles(path: str | Path) -> list[tuple[str, str]]:
    """(title, plain text) of every non-redirect article of a MediaWiki XML dump (bz2).

    Markup is removed with gensim's `filter_wiki`; bold/italic quote runs are dropped and
    paragraphs shorter than eight words (headings, captions, list debris) are skipped.
    """
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    articles = []
    with bz2.open(path) as stream:
        for title, markup, _ in extract_pages(stream, filter_namespaces=("0",)):
            if markup.lstrip().lower().startswith("#redirect"):
                continue
            paragraphs = (_WIKI_BOLD.sub("", p) for p in filter_wiki(markup).split("\n"))
            kept = [normalise(p) for p in paragraphs if len(p.split()) >= 8]
            if kept:
                articles.append((title, "\n".join(kept)))
    return articles


def lee_articles(path: str | Path) -> list[str]:
    """The Lee background corpus: one news article per line."""
    lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    return [normalise(line) for line in lines if line.strip()]


def build_corpus(
    wiki_path: str | Path,
    lee_path: str | Path,
    shares: Mapping[str, float],
    val_fraction: float,
    seed: int,
) -> pd.DataFrame:
    """General-text documents split into disjoint corpora (θ0, θC4, held out) and train/val.

    Documents, not sentences, are the unit, so no article feeds two corpora. Returns columns
    doc_id, source, corpus, split, text.
    """
    docs = [(f"wiki-{t}", "wikipedia", text) for t, text in wikipedia_articles(wiki_path)]
    docs += [(f"lee-{i}", "lee", text) for i, text in enumerate(lee_articles(lee_path))]
    frame = pd.DataFrame(docs, columns=["doc_id", "source", "text"])
    frame["corpus"] = assign_shares(frame.text.str.len().tolist(), shares, seed)
    frame["split"] = "train"
    for offset, name in enumerate(sorted(shares)):
        rows = frame.index[frame.corpus == name]
        if name == "heldout" or len(rows) < 2:
            continue
        sizes = frame.loc[rows, "text"].str.len().tolist()
        shares_ = {"train": 1 - val_fraction, "val": val_fraction}
        frame.loc[rows, "split"] = assign_shares(sizes, shares_, seed + 100 + offset)
    for name, share in shares.items():
        if share > 0 and not (frame.corpus == name).any():
            raise ValueError(f"corpus '{name}' received no document; raise its share")
    return frame[["doc_id", "source", "corpus", "split", "text"]]


def sentences(text: str, min_words: int = 8) -> list[str]:
    """Split running text into sentences (rule-based) and keep those of at least `min_words`."""
    out = []
    for paragraph in text.split("\n"):
        out += [s for s in _SENTENCE_END.split(paragraph) if len(s.split()) >= min_words]
    return out


def judge_data(
    movie: pd.DataFrame,
    others: Sequence[pd.DataFrame],
    neutral_band: float,
    test_fraction: float,
    seed: int,
    use_movie: bool = True,
) -> pd.DataFrame:
    """Training and test sentences for the 3-class judge, labelled from their mean rating.

    Movie rows come only from the movie split reserved for the judge (never used for
    fine-tuning); `test_fraction` of them are held out to measure the judge's accuracy on movie
    sentences. Rows of the other domains (tweets, amazon, nyt) only ever train. Labels follow
    `judge.rating_to_label`.
    """
    reserved = movie[movie.split == "judge"][["id", "rating", "text", "domain"]]
    held = assign_shares(
        [1] * len(reserved), {"train": 1 - test_fraction, "test": test_fraction}, seed
    )
    reserved = reserved.assign(split=held)
    if not use_movie:
        reserved = reserved[reserved.split == "test"]
    frame = pd.concat([reserved, *(o.assign(split="train") for o in others)], ignore_index=True)
    frame["label"] = [rating_to_label(r, neutral_band) for r in frame.rating]
    if (frame.split == "test").sum() == 0:
        raise ValueError("the judge's movie test split is empty; raise data.movie_splits.judge")
    return frame.reset_index(drop=True)
