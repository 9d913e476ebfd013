"""Readers of the paper's datasets (fetched by `data.hub`) into the tables the DAG already uses.

- SST-5 (Socher et al. 2013; the SetFit/sst5 JSON-lines layout: text, label 0–4): labels {0, 1} →
  negative, {3, 4} → positive, 2 → neutral (never fine-tuned on), as in Rofin et al. 2022 §4.1.
  Its train / validation / test files become the train / val / test splits of `movie.parquet`.
- C4 (Raffel et al. 2020; allenai/c4 `en/*.json.gz`, one JSON document per line): the corpus of
  GPT-C4, the independently pretrained model of the decorrelated experiment.
- DExperts sentiment prompts (Liu et al. 2021; JSON lines `{"prompt": {"text": ...}}`): already
  cut OpenWebText prefixes, so they are sampled, never re-cut.
"""

from __future__ import annotations

import gzip
import itertools
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from transformers import PreTrainedTokenizerBase

from lmlerp.data import prompts
from lmlerp.data.splits import assign_shares, normalise
from lmlerp.io import atomic

SST5_SENTIMENT = {0: "negative", 1: "negative", 2: "neutral", 3: "positive", 4: "positive"}
SST5_SPLITS = {"train": "train", "validation": "val", "dev": "val", "test": "test"}
PROMPT_KINDS = ("neutral", "positive", "negative")


def json_lines(path: str | Path) -> Iterator[dict[str, Any]]:
    """Parsed records of a JSON-lines file (plain or .gz); a bad line is named by number."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not a JSON line ({error.msg})") from error


def sst5_movie(directory: str | Path) -> pd.DataFrame:
    """SST-5 as the movie table: columns id, rating (label − 2), text, domain, sentiment, split."""
    rows = []
    for file in sorted(Path(directory).glob("*.jsonl")):
        split = SST5_SPLITS.get(file.stem)
        if split is None:
            continue
        for k, record in enumerate(json_lines(file)):
            label = int(record["label"])
            if label not in SST5_SENTIMENT:
                raise ValueError(f"{file}: label {label} is not an SST-5 label (0–4)")
            text = normalise(record["text"])
            if text:
                rows.append((f"sst5-{split}-{k}", label - 2, text, SST5_SENTIMENT[label], split))
    if not rows:
        raise ValueError(f"{directory}: no SST-5 file (train/validation/test .jsonl) found")
    frame = pd.DataFrame(rows, columns=["id", "rating", "text", "sentiment", "split"])
    missing = {"train", "val", "test"} - set(frame.split)
    if missing:
        raise ValueError(f"{directory}: SST-5 split(s) {sorted(missing)} missing")
    return frame.assign(domain="movie")[["id", "rating", "text", "domain", "sentiment", "split"]]


C4_ROWS_PER_GROUP = 8192  # documents per parquet row group: ≈40 MB of C4 text in memory at once


def c4_documents(directory: str | Path) -> Iterator[str]:
    """The normalised, non-empty texts of every `*.json.gz` file below `directory`, in order."""
    for file in sorted(Path(directory).rglob("*.json.gz")):
        for record in json_lines(file):
            text = normalise(record["text"])
            if text:
                yield text


def write_c4_corpus(
    directory: str | Path, corpus_table: str | Path, val_fraction: float, seed: int
) -> int:
    """Write C4 documents as GPT-C4's corpus table (doc_id, source, corpus, split, text); return
    the number of documents.

    Every `*.json.gz` file below `directory` is read (the config's file patterns choose how many
    shards); documents are split into train / val by characters with `assign_shares`. Two passes
    over the shards keep memory flat in the corpus size: the first keeps only each document's
    length (for the split), the second writes row group after row group.
    """
    sizes = np.fromiter((len(t) for t in c4_documents(directory)), dtype=np.int64)
    if len(sizes) < 2:
        files = len(list(Path(directory).rglob("*.json.gz")))
        raise ValueError(f"{directory}: fewer than two C4 documents in {files} file(s)")
    splits = assign_shares(sizes, {"train": 1 - val_fraction, "val": val_fraction}, seed)
    schema = pa.schema([(c, pa.string()) for c in ("doc_id", "source", "corpus", "split", "text")])
    with atomic.atomic_path(corpus_table) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        texts = c4_documents(directory)
        for start in range(0, len(sizes), C4_ROWS_PER_GROUP):
            stop = min(start + C4_ROWS_PER_GROUP, len(sizes))
            group = {
                "doc_id": [f"c4-{k}" for k in range(start, stop)],
                "source": ["c4"] * (stop - start),
                "corpus": ["theta_c4"] * (stop - start),
                "split": splits[start:stop],
                "text": list(itertools.islice(texts, stop - start)),
            }
            writer.write_table(pa.table(group, schema=schema))
    return len(sizes)


def prompt_text(record: Mapping[str, Any], where: str) -> str:
    """The prompt of one DExperts record: {"prompt": {"text": t}}, {"prompt": t} or {"text": t}."""
    value = record.get("prompt", record)
    text = value.get("text") if isinstance(value, Mapping) else value
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}: no prompt text in {sorted(record)}")
    return text


def dexperts_prompts(
    files: Mapping[str, str | Path],
    settings: Mapping[str, Any],
    tokenizer: PreTrainedTokenizerBase,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """`settings[kind]` prompts drawn without replacement from each kind's file, plus the fixed
    prompts; the same columns as `lmlerp.data.prompts.build`."""
    frames = []
    for kind in PROMPT_KINDS:
        count = settings[kind]
        if count == 0:
            continue
        texts = [
            prompt_text(r, f"{files[kind]}:{k + 1}") for k, r in enumerate(json_lines(files[kind]))
        ]
        if len(texts) < count:
            raise ValueError(f"prompts.{kind}: asked for {count}, {files[kind]} holds {len(texts)}")
        chosen = sorted(rng.choice(len(texts), size=count, replace=False))
        frames.append(
            pd.DataFrame(
                {
                    "prompt_id": [f"{kind}-{j:04d}" for j in range(count)],
                    "kind": kind,
                    "text": [texts[i] for i in chosen],
                    "n_tokens": [
                        len(tokenizer.encode(texts[i], add_special_tokens=False)) for i in chosen
                    ],
                    "source_id": [f"{kind}-line{i + 1}" for i in chosen],
                }
            )
        )
    frames.append(prompts.fixed_prompts(settings["fixed"], tokenizer))
    table = pd.concat(frames, ignore_index=True)
    if table.empty:
        raise ValueError("the prompt set is empty: ask for at least one prompt")
    return table
