"""Token files: a tokenised corpus on disk, appended chunk by chunk and read back memory-mapped.

Layout: a fixed `HEADER_BYTES` header holding the magic line and a JSON object (dtype, n_tokens,
vocab_size) padded with spaces, then the ids as raw little-endian uint16 (vocab ≤ 65,536, GPT-2's
50,257 fits) or uint32. Writing streams (the header is filled in last), so no job ever holds the
corpus: C4 for GPT-C4 is ≈1.4B ids, ≈11 GB as int64 but 2.8 GB as uint16, and only the pages a
window touches are ever resident.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from lmlerp.io import atomic

MAGIC = b"LMLERP-TOKENS 1\n"
HEADER_BYTES = 4096  # one page: the ids start page-aligned


def dtype_for(vocab_size: int) -> np.dtype:
    """The narrowest unsigned dtype that holds every id below `vocab_size`."""
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    return np.dtype("<u2") if vocab_size <= 2**16 else np.dtype("<u4")


def write(path: str | os.PathLike, chunks: Iterable[np.ndarray], vocab_size: int) -> int:
    """Append every chunk of ids to a new token file at `path` (atomically); return the count.

    Ids outside [0, vocab_size) and an empty corpus are refused, naming the file.
    """
    dtype = dtype_for(vocab_size)
    n_tokens = 0
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as stream:
        stream.write(b"\0" * HEADER_BYTES)
        for chunk in chunks:
            chunk = np.asarray(chunk)
            if chunk.size and (chunk.min() < 0 or chunk.max() >= vocab_size):
                raise ValueError(f"{path}: id {chunk.max()} outside the vocabulary of {vocab_size}")
            stream.write(chunk.astype(dtype, copy=False).tobytes())
            n_tokens += chunk.size
        if n_tokens == 0:
            raise ValueError(f"{path}: no tokens to write: the corpus is empty")
        stream.seek(0)
        stream.write(_header(dtype, n_tokens, vocab_size))
    return n_tokens


def _header(dtype: np.dtype, n_tokens: int, vocab_size: int) -> bytes:
    """Magic line + JSON metadata, padded with spaces to HEADER_BYTES and ended by a newline."""
    meta = {"dtype": dtype.str, "n_tokens": n_tokens, "vocab_size": vocab_size}
    body = MAGIC + json.dumps(meta).encode()
    return body + b" " * (HEADER_BYTES - len(body) - 1) + b"\n"


def header(path: str | os.PathLike) -> dict:
    """The JSON metadata of a token file; ValueError naming the file if it is not one."""
    with open(path, "rb") as stream:
        raw = stream.read(HEADER_BYTES)
    if not raw.startswith(MAGIC) or len(raw) < HEADER_BYTES:
        raise ValueError(f"{path}: not a token file (no '{MAGIC.decode().strip()}' header)")
    meta = json.loads(raw[len(MAGIC) :].decode())
    expected = HEADER_BYTES + meta["n_tokens"] * np.dtype(meta["dtype"]).itemsize
    if Path(path).stat().st_size != expected:
        size = Path(path).stat().st_size
        raise ValueError(f"{path}: {size} bytes, header promises {expected} (truncated?)")
    return meta


def read(path: str | os.PathLike) -> np.memmap:
    """The ids of a token file as a read-only 1-D memory map (nothing is loaded up front)."""
    meta = header(path)
    return np.memmap(
        path, dtype=meta["dtype"], mode="r", offset=HEADER_BYTES, shape=(meta["n_tokens"],)
    )
