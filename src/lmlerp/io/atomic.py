"""Atomic outputs: a killed job must leave nothing that looks finished.

Every writer builds its output under a hidden temporary name in the destination's own directory
(same file system, so `os.replace` is an atomic rename) and renames it into place only once the
content is complete.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to `final`; rename it to `final` if the block succeeds.

    On an exception the temporary file or directory is removed and `final` is left untouched.
    A job killed with SIGKILL cannot clean up: its temporary sibling is removed here, when the
    re-run job writes the same output again (Snakemake runs one job per output at a time).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        os.close(fd)
        tmp = Path(name)
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod((0o777 if directory else 0o666) & ~umask)  # mkstemp's 0600 would hide results
    try:
        yield tmp
        if directory and final.is_dir():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException as error:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        if _disk_full(error):  # writers (pyarrow, safetensors) rarely say which file it was
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(final)) from error
        raise


def _disk_full(error: BaseException) -> bool:
    """Whether `error` reports a full disk or quota (as errno, or only in its text)."""
    code = getattr(error, "errno", None)
    return code in (errno.ENOSPC, errno.EDQUOT) or "no space left on device" in str(error).lower()


def remove_stale_temporaries(final: str | os.PathLike) -> list[Path]:
    """Delete the temporary siblings that killed writers of `final` left behind; return them.

    Only names `atomic_path` makes for this very output match: `.<name>.<8 random chars>.tmp`.
    """
    final = Path(final)
    pattern = re.compile(rf"\.{re.escape(final.name)}\.[a-z0-9_]{{8}}\.tmp")
    stale = [p for p in final.parent.glob(f".{final.name}.*.tmp") if pattern.fullmatch(p.name)]
    for path in stale:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return stale


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_parquet(path: str | os.PathLike, frame: Any) -> None:
    """Write a pandas DataFrame as parquet, atomically (no index column)."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def read_json(path: str | os.PathLike) -> Any:
    """Load one JSON file."""
    return json.loads(Path(path).read_text())


def read_parquet(path: str | os.PathLike, *, min_rows: int = 0) -> Any:
    """Read a table written by `write_parquet`; ValueError naming the file if it is not a whole
    parquet file (truncated, overwritten, empty) or holds fewer than `min_rows` rows."""
    import pandas as pd  # pandas costs a second to import; most writers here do not need it

    try:
        frame = pd.read_parquet(path)
    except Exception as error:  # pyarrow's errors do not name the file
        raise ValueError(f"{path}: not a readable parquet table ({error})") from error
    if len(frame) < min_rows:
        raise ValueError(f"{path}: {len(frame)} rows, at least {min_rows} needed")
    return frame


def write_tsv(path: str | os.PathLike, frame: Any) -> None:
    """Write a pandas DataFrame as a tab-separated table, atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False)


def link_copy(source: str | os.PathLike, directory: str | os.PathLike) -> None:
    """Publish a directory under a second name: hard links where the file system allows (no
    extra disk for a GPT-2 Large checkpoint), copies elsewhere; atomic either way."""
    with atomic_path(directory, directory=True) as tmp:
        for path in sorted(Path(source).iterdir()):
            link_or_copy(path, tmp / path.name)


def link_or_copy(source: str | os.PathLike, destination: str | os.PathLike) -> None:
    """A hard link of a file where the file system allows, else a copy (`shutil.copytree`'s
    `copy_function` for whole checkpoint trees)."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)
