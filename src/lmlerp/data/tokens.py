"""Tokenise a corpus table into token files, a batch of documents at a time.

The packing is GPT-2's: every document's ids followed by EOS, all documents in one stream. Only
one batch of documents and its ids are in memory at once, so the peak memory of the job does not
grow with the corpus (docs/paper-scale.md, "Memory").
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow.parquet as pq
from transformers import PreTrainedTokenizerBase

BATCH_ROWS = 256  # documents per batch: ≈0.5 MB of C4 text (≈2 KB a document)


def corpus_texts(
    table: str | os.PathLike, corpus: str, split: str, batch_rows: int = BATCH_ROWS
) -> Iterator[list[str]]:
    """The texts of rows `corpus == corpus, split == split` of a corpus table, batch by batch."""
    columns = ["corpus", "split", "text"]
    for batch in pq.ParquetFile(table).iter_batches(batch_size=batch_rows, columns=columns):
        rows = batch.to_pydict()
        kept = [
            t for c, s, t in zip(rows["corpus"], rows["split"], rows["text"], strict=True)
            if c == corpus and s == split
        ]  # fmt: skip
        if kept:
            yield kept


def document_ids(
    tokenizer: PreTrainedTokenizerBase, batches: Iterable[list[str]]
) -> Iterator[np.ndarray]:
    """Per batch of texts, their ids packed as doc₁ EOS doc₂ EOS … (one int64 array)."""
    eos = tokenizer.eos_token_id
    for texts in batches:
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
        yield np.fromiter(
            (i for ids in encoded for i in (*ids, eos)),
            dtype=np.int64,
            count=sum(len(ids) + 1 for ids in encoded),
        )
