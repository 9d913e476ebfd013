"""Scores of the generated text itself: diversity (distinct-n) and grammar (the Harper checker).

Rofin et al. 2022 (https://arxiv.org/abs/2211.12092) report distinct-n and the grammatical share
of continuations; the paper's grammar judge is a RoBERTa fine-tuned on CoLA (a `transformers`
scorer), offline it is Harper, a rule-based checker.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct-n of one prompt's samples: |unique n-grams| / |n-grams| (Li et al. 2016).

    Tokens are whitespace-separated words (`str.split()`), so punctuation stays attached to its
    word. n-grams never cross from one sample into the next; uniqueness is counted over all
    samples together. The denominator is the number of n-grams, not of words: the DExperts code
    (Liu et al. 2021) divides every distinct-n by the word count, which for n > 1 gives smaller
    values than the definition (3/7 instead of 3/5 for bigrams of ["a b a b", "a b c"]).

    Returns:
        A value in (0, 1], or nan when the samples hold no n-gram at all.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    grams = [
        tuple(words[i : i + n])
        for words in (text.split() for text in texts)
        for i in range(len(words) - n + 1)
    ]
    return len(set(grams)) / len(grams) if grams else math.nan


def distinct_by_prompt(frame: pd.DataFrame, n: int) -> float:
    """Mean over prompts of `distinct_n` of each prompt's samples (columns prompt_id, continuation).

    Prompts whose samples hold no n-gram (nan) are left out of the mean; nan if all are.
    """
    per_prompt = frame.groupby("prompt_id")["continuation"].agg(lambda s: distinct_n(list(s), n))
    return float(per_prompt.mean()) if per_prompt.notna().any() else math.nan


# Harper 0.2.0 lint kinds (`Lint.lint_kind`) that judge style, not grammar. Kinds seen on 4,000
# Rotten Tomatoes snippets (Hutto & Gilbert 2014) and on shuffled / mangled copies of them:
# Agreement, Capitalization, Eggcorn, Enhancement, Formatting, Grammar, Miscellaneous,
# Punctuation, Readability, Redundancy, Repetition, Spelling, Style, Typo, Usage, WordChoice.
# Excluded, with what they flagged there:
#   Style        — Oxford comma, "thru", "pretty decent"
#   Formatting   — "..." instead of "…", repeated or trailing spaces
#   Readability  — "This sentence is 41 words long."
#   Enhancement  — "use `excellent` instead of `very good`"
#   Redundancy   — "and also", "all of the"
#   Regionalism  — dialect variants (colour/color); not seen, excluded by its definition
# Spelling is counted: it flags non-words (the word salad of a broken model) but also names and
# rare words, so only 66% of those human snippets pass (92% if Spelling were also excluded).
STYLE_KINDS = frozenset(
    {"Style", "Formatting", "Readability", "Enhancement", "Redundancy", "Regionalism"}
)


@functools.cache
def _linter():
    import harper  # imported lazily: building the linter takes ≈0.8 s

    return harper.Linter()


def lint_kinds(texts: Sequence[str]) -> list[list[str]]:
    """The `lint_kind` of every Harper lint of every text (American English, plain text)."""
    linter = _linter()
    return [[lint.lint_kind for lint in linter.lint(text)] for text in texts]


def grammar_ok(texts: Sequence[str], exclude: Iterable[str] = STYLE_KINDS) -> np.ndarray:
    """(N,) bool: True where Harper reports no lint outside `exclude` (an empty text passes).

    Harper is a rule-based checker, not an acceptability model: it misses much (it accepts
    "This are a bad sentences sentences ." but for a trailing space), so pair it with perplexity.
    """
    excluded = frozenset(exclude)
    return np.array([all(k in excluded for k in kinds) for kinds in lint_kinds(texts)], dtype=bool)


def grammar_score(texts: Sequence[str], exclude: Iterable[str] = STYLE_KINDS) -> float:
    """Share of texts with no non-style Harper lint: (1/N) Σ_i 1[grammar_ok(text_i)]."""
    return float(grammar_ok(texts, exclude).mean()) if len(texts) else math.nan
