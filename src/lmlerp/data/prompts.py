"""Prompt sets: prefixes of held-out text, cut after a few tokens (the DExperts recipe).

Liu et al. 2021 (DExperts) build their sentiment prompts from held-out sentences cut after 4–10
GPT-2 tokens; Rofin et al. 2022 use those prompts plus "The movie was". Neutral prompts come from
held-out general text, positive / negative ones from the movie sentences reserved for prompts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from transformers import PreTrainedTokenizerBase

from lmlerp.data.corpus import sentences


def cut(text: str, tokenizer: PreTrainedTokenizerBase, n_tokens: int, min_tokens: int = 1):
    """The first ≈`n_tokens` tokens of `text`, ending at a word boundary; returns (prefix, k).

    A small BPE splits words into pieces, so a blind cut leaves fragments such as "Afghan
    forces sc". The cut moves back to the nearest word boundary at ≥ `min_tokens` tokens, else
    forward to the next one; k is the number of tokens actually kept.
    """
    ids = tokenizer.encode(text, add_special_tokens=False)

    def at_boundary(k: int) -> bool:
        prefix = tokenizer.decode(ids[:k])
        return text.startswith(prefix) and (
            k == len(ids) or text[len(prefix) : len(prefix) + 1].isspace()
        )

    backward = range(min(n_tokens, len(ids)), min_tokens - 1, -1)
    forward = range(max(n_tokens + 1, min_tokens), len(ids) + 1)
    k = next((k for k in (*backward, *forward) if at_boundary(k)), min(n_tokens, len(ids)))
    return tokenizer.decode(ids[:k]).rstrip(), k


def sample_prefixes(
    texts: Sequence[str],
    ids: Sequence[str],
    count: int,
    tokenizer: PreTrainedTokenizerBase,
    min_tokens: int,
    max_tokens: int,
    rng: np.random.Generator,
    kind: str,
) -> pd.DataFrame:
    """Draw `count` texts without replacement; cut each after U{min_tokens..max_tokens} tokens.

    Only texts longer than `max_tokens + 5` tokens are eligible, so every prompt is a strict prefix
    with a continuation in the source.
    """
    lengths = [len(tokenizer.encode(t, add_special_tokens=False)) for t in texts]
    eligible = [i for i, n in enumerate(lengths) if n > max_tokens + 5]
    if len(eligible) < count:
        raise ValueError(
            f"{kind} prompts: asked for {count} but only {len(eligible)} source texts are longer "
            f"than {max_tokens + 5} tokens; lower prompts.{kind} or enlarge its source split"
        )
    chosen = rng.choice(eligible, size=count, replace=False)
    cuts = rng.integers(min_tokens, max_tokens + 1, size=count)
    rows = []
    for j, (i, n) in enumerate(zip(chosen, cuts, strict=True)):
        prefix, k = cut(texts[i], tokenizer, int(n), min_tokens)
        rows.append(
            {
                "prompt_id": f"{kind}-{j:04d}",
                "kind": kind,
                "text": prefix,
                "n_tokens": k,
                "source_id": ids[i],
            }
        )
    return pd.DataFrame(rows, columns=["prompt_id", "kind", "text", "n_tokens", "source_id"])


def fixed_prompts(texts: Sequence[str], tokenizer: PreTrainedTokenizerBase) -> pd.DataFrame:
    """Prompts used verbatim, such as "The movie was" (paper Fig 4)."""
    rows = [
        {
            "prompt_id": f"fixed-{j:04d}",
            "kind": "fixed",
            "text": text,
            "n_tokens": len(tokenizer.encode(text, add_special_tokens=False)),
            "source_id": "",
        }
        for j, text in enumerate(texts)
    ]
    return pd.DataFrame(rows, columns=["prompt_id", "kind", "text", "n_tokens", "source_id"])


def build(
    corpus: pd.DataFrame,
    movie: pd.DataFrame,
    tokenizer: PreTrainedTokenizerBase,
    settings: Mapping[str, Any],
    rng: np.random.Generator,
) -> pd.DataFrame:
    """All prompt sets in one table: neutral, positive, negative, then the fixed prompts.

    Neutral prompts are sentences of the held-out corpus; positive / negative ones are movie
    sentences of the 'prompts' split with that sentiment. Ids are unique and stable for a seed.
    """
    heldout = corpus[corpus.corpus == "heldout"]
    neutral_texts, neutral_ids = [], []
    for doc_id, text in zip(heldout.doc_id, heldout.text, strict=True):
        found = sentences(text)
        neutral_texts += found
        neutral_ids += [f"{doc_id}#{k}" for k in range(len(found))]
    sets = [(neutral_texts, neutral_ids, "neutral")]
    for kind in ("positive", "negative"):
        rows = movie[(movie.split == "prompts") & (movie.sentiment == kind)]
        sets.append((rows.text.tolist(), rows.id.tolist(), kind))
    lo, hi = settings["min_tokens"], settings["max_tokens"]
    frames = [
        sample_prefixes(texts, ids, settings[kind], tokenizer, lo, hi, rng, kind)
        for texts, ids, kind in sets
        if settings[kind] > 0
    ]
    frames.append(fixed_prompts(settings["fixed"], tokenizer))
    table = pd.concat(frames, ignore_index=True)
    if table.empty:
        raise ValueError("the prompt set is empty: ask for at least one prompt")
    return table
