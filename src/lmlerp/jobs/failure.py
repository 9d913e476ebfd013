"""Readable job failures: a job that runs out of memory or disk ends its log with one line that
says so, what to change, and that no partial output was kept.

Snakemake shows the tail of a failed job's log (`show-failed-logs`); a 40-line traceback from
deep inside pyarrow or torch then hides the cause. `install` keeps the traceback (it is the
evidence) and appends the diagnosis as the last line.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Iterator

_DISK = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}
_MEMORY_TEXT = ("can't allocate memory", "cannot allocate memory", "out of memory")


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and every exception it was raised from or while handling."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def diagnosis(error: BaseException) -> str | None:
    """One line naming a resource failure (memory or disk) in `error`'s chain, else None."""
    for link in _chain(error):
        text = str(link).lower()
        if isinstance(link, MemoryError) or any(t in text for t in _MEMORY_TEXT):
            return (
                "out of memory: raise this rule's mem_mb (profile `set-resources`) or run it on "
                "a larger node, or lower the batch size in the config; no output was kept"
            )
        code = getattr(link, "errno", None)
        if code in _DISK or "no space left on device" in text:
            where = getattr(link, "filename", None)
            return (
                f"{_DISK.get(code, 'no space left on device')}"
                f"{f' while writing {where}' if where else ''}: free space or move the working "
                "directory to a larger file system, then re-run; the partial output was removed"
            )
    return None


def install(job: str) -> None:
    """Append `lmlerp: <job> failed: <diagnosis>` to the traceback of an uncaught resource error.

    Call it first thing in a Snakemake `script:` (after stderr goes to the log).
    """
    previous = sys.excepthook

    def hook(kind, error, traceback) -> None:
        previous(kind, error, traceback)
        line = diagnosis(error)
        if line:
            print(f"lmlerp: {job} failed: {line}", file=sys.stderr, flush=True)

    sys.excepthook = hook
