"""Toy movie sentences for the tests' tokenizers, models and prompts: 6 subjects × 5 verbs × 6
adjectives, 180 sentences, every one of them different."""

from __future__ import annotations

import itertools

SUBJECTS = ["The movie", "This film", "The actor", "A story", "The plot", "Our critic"]
VERBS = ["was", "seemed", "felt", "became", "remained"]
ADJECTIVES = ["wonderful", "boring", "charming", "dreadful", "moving", "slow"]


def sentences(tail: str = "today.") -> list[str]:
    """'<subject> <verb> <adjective> <tail>' for every combination, in product order."""
    return [f"{s} {v} {a} {tail}" for s, v, a in itertools.product(SUBJECTS, VERBS, ADJECTIVES)]


TEXTS = sentences()
