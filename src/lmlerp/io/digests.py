"""Content digests: sha256 of values, files and tables, for cache keys that say what they hold.

A digest is computed from content only, never from paths, times or Python's `hash`, so the same
inputs give the same digest in another checkout, on another machine, in another process.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

BLOCK = 1 << 24  # bytes read at a time: 16 MiB


def digest(obj: Any) -> str:
    """sha256 of `obj` as canonical JSON: keys sorted, no whitespace, floats by `repr`.

    Mapping key order never matters; 0.1 and 0.1000000001 differ; NaN is spelled NaN. Values JSON
    cannot hold (numpy scalars, paths) are spelled by `str`.
    """
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(value: Any) -> Any:
    """A JSON-able stand-in: numpy scalars as Python numbers, anything else as its `str`."""
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


def files_digest(paths: Iterable[str | os.PathLike]) -> str:
    """sha256 over the files under `paths` (directories recursively): each file's name relative to
    its given path, then its bytes, in name order — a renamed or edited file changes it."""
    total = hashlib.sha256()
    for root in map(Path, paths):
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            total.update(str(path.relative_to(root) if root.is_dir() else path.name).encode())
            total.update(b"\0")
            update_with_file(total, path)
            total.update(b"\0")
    return total.hexdigest()


def update_with_file(total: Any, path: str | os.PathLike) -> None:
    """Feed a file's bytes into the hash `total`, `BLOCK` bytes at a time."""
    with Path(path).open("rb") as handle:
        while block := handle.read(BLOCK):
            total.update(block)


def frame_digest(frame: Any) -> str:
    """sha256 of a DataFrame's columns, dtypes and values (its index ignored), as `digest`."""
    return digest(
        {
            "columns": [str(c) for c in frame.columns],
            "dtypes": [str(t) for t in frame.dtypes],
            "values": frame.to_dict(orient="list"),
        }
    )
