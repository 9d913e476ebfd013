"""Rated movie sentences (VADER's ground truth): labels and disjoint splits.

The VADER ground truth (Hutto & Gilbert 2014, DESIGN §3) gives 10,605 Rotten Tomatoes sentences
with a mean human rating in [−4, 4] — the same source as SST, which the paper uses — plus tweets,
Amazon and NYT snippets in the same format, which may also train the sentiment judge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lmlerp.data.splits import assign_shares, normalise


def rating_to_label(rating: float, neutral_band: float) -> int:
    """Class index of a mean human rating r ∈ [−4, 4] (VADER ground truth, Hutto & Gilbert 2014).

    r < −band → 0 (negative); r > band → 2 (positive); −band ≤ r ≤ band → 1 (neutral). The band's
    edges are neutral: with band = 1, r = −1.0 and r = 1.0 are neutral, r = 1.01 is positive.
    """
    if neutral_band < 0:
        raise ValueError(f"neutral_band must be >= 0, got {neutral_band}")
    if rating < -neutral_band:
        return 0
    if rating > neutral_band:
        return 2
    return 1


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
    `rating_to_label`.
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
