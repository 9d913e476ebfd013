"""The classification tasks of the connectivity study, as examples and batches.

Movie sentiment (offline default): positive = 1, negative = 0 sentences of the movie set, training
sentences from its `train` split, held-out ones from its `test` split, never the judge's. GLUE QQP
/ MNLI (paper scale): a seeded 10% of train.tsv split 80:20 (Juneja et al. 2022), every dropped
line counted. A batch is (input_ids, attention_mask, labels) with one class label per example.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lmlerp.train.batches import Batch, pad, skipped_epochs

SENTIMENT_LABELS = {"negative": 0, "positive": 1}
# GLUE train.tsv columns: first text, second text, label column, label names in index order.
GLUE = {
    "glue_qqp": ("question1", "question2", "is_duplicate", ["0", "1"]),
    "glue_mnli": (
        "sentence1",
        "sentence2",
        "gold_label",
        ["entailment", "neutral", "contradiction"],
    ),
}


def num_labels(task: str) -> int:
    """Number of classes of a task: 2 for movie sentiment and QQP, 3 for MNLI."""
    return len(GLUE[task][3]) if task in GLUE else len(SENTIMENT_LABELS)


def movie_examples(movie: pd.DataFrame, split: str, limit: int | None = None) -> pd.DataFrame:
    """Positive (1) and negative (0) movie sentences of one split: columns text, text_pair, label.

    `limit` keeps the first `limit` sentences of each class (file order), so that a held-out set
    stays balanced and fixed when the split grows.
    """
    parts = []
    for sentiment, label in SENTIMENT_LABELS.items():
        rows = movie[(movie.sentiment == sentiment) & (movie.split == split)]
        if rows.empty:
            raise ValueError(f"no {sentiment} movie sentences in the '{split}' split")
        parts.append(rows.head(limit).assign(label=label))
    frame = pd.concat(parts, ignore_index=True)
    return frame.assign(text_pair=None)[["text", "text_pair", "label"]]


def read_glue(path: str | Path, task: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """The usable rows of a GLUE train.tsv and how many lines were dropped, by reason.

    GLUE files are unquoted TSV (some QQP questions hold stray quotes), so a line is read as
    fields split at tabs; it is `unreadable` when its field count differs from the header's,
    `unknown_label` when its label is not one of the task's (MNLI's "-"), `missing_text` when a
    text is empty. Nothing is dropped silently: the counts, with `lines` (data lines read), go
    into the data record of the run. Raises ValueError naming the file when nothing is left.
    """
    first, second, column, names = GLUE[task]
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None) or []
        lines = list(reader)
    missing = {first, second, column} - set(header)
    if missing:
        raise ValueError(f"{path}: a {task} train.tsv needs columns {sorted(missing)}")
    readable = [fields for fields in lines if len(fields) == len(header)]
    table = pd.DataFrame(readable, columns=header, dtype=str)
    known = table[table[column].isin(names)]
    usable = known[(known[first] != "") & (known[second] != "")]
    counts = {
        "lines": len(lines),
        "unreadable": len(lines) - len(readable),
        "unknown_label": len(table) - len(known),
        "missing_text": len(known) - len(usable),
    }
    if usable.empty:
        raise ValueError(f"{path}: every line of this {task} file was dropped: {counts}")
    return usable.reset_index(drop=True), counts


def glue_examples(
    path: str | Path, task: str, fraction: float, eval_share: float, seed: int
) -> tuple[pd.DataFrame, dict[str, int]]:
    """A seeded `fraction` of a GLUE train.tsv, split train / eval by `eval_share` (paper: 80:20).

    Returns columns text, text_pair, label, split, and the drop counts of `read_glue` (lines are
    dropped before the split, so a dropped line belongs to no split).
    """
    first, second, column, names = GLUE[task]
    table, dropped = read_glue(path, task)
    table = table.sample(frac=fraction, random_state=seed).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    split = np.where(rng.random(len(table)) < eval_share, "eval", "train")
    frame = pd.DataFrame(
        {
            "text": table[first],
            "text_pair": table[second],
            "label": table[column].map(names.index).astype(int),
            "split": split,
        }
    )
    return frame, dropped


def task_data(
    data: Mapping[str, Any], movie: pd.DataFrame, eval_examples: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(training, held-out) examples of the configured task, and the record of how they were read.

    `data` holds task, glue {path, fraction, eval_share} and the data seed (the same for every
    fine-tuning seed: they must see the same split). Movie sentiment: the movie `train` split,
    and the first `eval_examples` per class of its `test` split. GLUE: a seeded share of
    train.tsv split 80:20 (paper), the held-out part cut to its first `eval_examples`.
    The record: task, source file, the lines dropped by reason (GLUE; none for the movie table,
    which is already clean) and the examples per split.
    """
    if data["task"] == "movie_sentiment":
        train = movie_examples(movie, "train")
        held_out = movie_examples(movie, "test", eval_examples)
        source, dropped = "movie", {}
    else:
        glue = data["glue"]
        source = Path(glue["path"]) / "train.tsv"
        frame, dropped = glue_examples(
            source, data["task"], glue["fraction"], glue["eval_share"], data["seed"]
        )
        train = frame[frame.split == "train"]
        held_out = frame[frame.split == "eval"].head(eval_examples)
    record = {
        "task": data["task"],
        "source": str(source),
        "dropped": dropped,
        "examples": {"train": len(train), "eval": len(held_out)},
    }
    return train, held_out, record


def task_examples(
    data: Mapping[str, Any], movie: pd.DataFrame, eval_examples: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training, held-out) examples of the configured task (`task_data` without its record)."""
    train, held_out, _ = task_data(data, movie, eval_examples)
    return train, held_out


def positive_class(task: str) -> int | None:
    """The class whose F1 the report gives: QQP's duplicate (1); None where it reports accuracy
    only."""
    return 1 if task == "glue_qqp" else None


def encode(tokenizer, examples: pd.DataFrame, max_length: int) -> list[tuple[list[int], int]]:
    """(token ids, label) per example; pairs are encoded as the tokenizer joins them.

    No EOS is appended: GPT-2's classifier reads the last token that is not padding, and our
    padding token is EOS.
    """
    pairs = examples.text_pair.where(examples.text_pair.notna(), None).tolist()
    has_pairs = any(p is not None for p in pairs)
    encoded = tokenizer(
        examples.text.tolist(),
        pairs if has_pairs else None,
        truncation=True,
        max_length=max_length,
    )["input_ids"]
    return list(zip(encoded, examples.label.astype(int).tolist(), strict=True))


def _batch(items: Sequence[tuple[list[int], int]], pad_id: int, max_len: int) -> Batch:
    ids, mask, _ = pad([ids for ids, _ in items], pad_id, max_len)  # (B, T)
    return ids, mask, torch.tensor([label for _, label in items])  # labels (B,)


def train_batches(
    encoded: Sequence[tuple[list[int], int]],
    batch_size: int,
    pad_id: int,
    max_len: int,
    seed: int,
    start: int = 0,
) -> Iterator[Batch]:
    """Endless seeded epochs of shuffled, right-padded batches with class labels, from batch
    `start` on (whole epochs skipped by their permutation alone)."""
    if len(encoded) < batch_size:
        raise ValueError(f"{len(encoded)} examples cannot fill one batch of {batch_size}")
    generator = torch.Generator().manual_seed(seed)
    per_epoch = len(encoded) // batch_size
    skip = skipped_epochs(generator, len(encoded), per_epoch, start, draws=1)
    while True:
        order = torch.randperm(len(encoded), generator=generator).tolist()
        for first in range(skip * batch_size, per_epoch * batch_size, batch_size):
            yield _batch([encoded[i] for i in order[first : first + batch_size]], pad_id, max_len)
        skip = 0


def held_out_batches(
    tokenizer, examples: pd.DataFrame, max_length: int, batch_size: int
) -> list[Batch]:
    """The held-out examples encoded and batched once, shortest first (less padding; the
    per-example mean does not depend on the order)."""
    encoded = sorted(encode(tokenizer, examples, max_length), key=lambda item: len(item[0]))
    return eval_batches(encoded, batch_size, tokenizer.pad_token_id, max_length)


def eval_batches(
    encoded: Sequence[tuple[list[int], int]], batch_size: int, pad_id: int, max_len: int
) -> list[Batch]:
    """The held-out set once, in order, as a list (reused at every point of a path)."""
    return [
        _batch(encoded[i : i + batch_size], pad_id, max_len)
        for i in range(0, len(encoded), batch_size)
    ]
