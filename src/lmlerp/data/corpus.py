"""General English text for pretraining: Wikipedia and Lee news articles, split by document.

gensim's test data (DESIGN §3) gives 106 Wikipedia articles and 300 Lee news articles; θ0, θC4 and
the held-out prompt source receive disjoint documents, so no article feeds two corpora.
"""

from __future__ import annotations

import bz2
import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from lmlerp.data.splits import assign_shares, normalise

_WIKI_BOLD = re.compile(r"'{2,}")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")


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
