"""Paper-scale inputs from the Hugging Face hub — or from a local directory that stands in for it.

A *source* in the config is either ``{repo: owner/name, revision: <commit>}`` or
``{path: /some/directory}``. `fetch` turns one into a plain local directory under
``resources/hub/<name>`` that every later job reads (the `fetch` rule is a Snakemake localrule: it
needs the network, compute nodes may not have it).

- Hub downloads go through the hub cache (``HF_HOME``, shared across projects) and are then
  published into the project with hard links, so a GPT-2 XL is stored once on disk.
- Offline mode (config ``hub.offline: true`` or ``HF_HUB_OFFLINE=1``) never touches the network:
  the snapshot must already be in the cache, or the job stops saying how to get it.
- Pickled weights are never fetched (``*.bin``, ``*.pt``, ``*.h5``, ``*.msgpack`` are not even
  downloaded); a model repository without safetensors weights is refused, naming the repository.
- ``fetch.json`` records where the files came from and the commit the hub resolved, so a run made
  with a branch name can still be pinned afterwards.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lmlerp.io.atomic import atomic_path, write_json

MODEL_FILES = (
    "*.json",
    "*.safetensors",
    "*.txt",
    "*.model",
    "tokenizer*",
)  # config, weights, tokenizer and vocabulary files; never pickles
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".h5", ".msgpack")
COMMIT = 40  # a hub commit id is 40 hexadecimal digits


class HubError(RuntimeError):
    """A paper-scale input that cannot be obtained or used."""


def describe(source: Mapping[str, Any]) -> str:
    """'owner/name@revision', the local path or 'GGUF <name>' (config `gguf`), for messages."""
    if "path" in source:
        return str(source["path"])
    if "gguf" in source:
        return f"GGUF {source['gguf']}"
    return f"{source['repo']}@{source['revision']}"


def is_pinned(source: Mapping[str, Any]) -> bool:
    """True for a local path or a full commit id; False for a branch or tag (which can move)."""
    revision = str(source.get("revision", ""))
    pinned = len(revision) == COMMIT and all(c in "0123456789abcdef" for c in revision)
    return "path" in source or pinned


def offline(requested: bool) -> bool:
    """Offline when the config asks for it or `HF_HUB_OFFLINE` is set (huggingface_hub's switch)."""
    return requested or os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def _snapshot(source: Mapping[str, Any], repo_type: str, patterns: Sequence[str], local_only: bool):
    """The hub snapshot directory in the cache (downloaded unless `local_only`)."""
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(
                repo_id=source["repo"],
                repo_type=repo_type,
                revision=source["revision"],
                allow_patterns=list(patterns),
                local_files_only=local_only,
            )
        )
    except Exception as error:  # the hub raises many types: name the source, keep the cause
        mode = "offline mode: only the local cache was searched" if local_only else "online"
        cache = os.environ.get("HF_HOME", "~/.cache/huggingface")
        raise HubError(
            f"cannot fetch {repo_type} '{describe(source)}' ({mode}; HF_HOME={cache}): "
            f"{type(error).__name__}: {error}. Download it where the hub is reachable, e.g. "
            f"`hf download {source['repo']} --revision {source['revision']}"
            f"{' --repo-type dataset' if repo_type == 'dataset' else ''}` with the same HF_HOME, "
            f"or point the config at a local directory with `path:`."
        ) from error


def _publish(files: Sequence[Path], root: Path, out: Path) -> None:
    """Hard-link (or copy) `files` below `root` into `out`, keeping relative paths."""
    for file in files:
        target = out / file.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        real = file.resolve()  # cache snapshots are symlinks into a blob store
        try:
            os.link(real, target)
        except OSError:
            shutil.copy2(real, target)


def _selected(root: Path, patterns: Sequence[str]) -> list[Path]:
    """Regular files below `root` whose relative path matches one of `patterns` (fnmatch)."""
    from fnmatch import fnmatch

    found = []
    for file in sorted(root.rglob("*")):
        relative = file.relative_to(root).as_posix()
        if relative.startswith(".") or "/." in relative or not file.is_file():
            continue  # .cache / .git metadata
        if any(fnmatch(relative, p) or fnmatch(file.name, p) for p in patterns):
            found.append(file)
    return found


def check_model_directory(directory: Path, what: str) -> None:
    """A fetched model must carry a config and safetensors weights, and no pickle."""
    if not (directory / "config.json").is_file():
        raise HubError(f"{what}: no config.json — not a transformers model directory")
    if not any(directory.glob("*.safetensors")):
        raise HubError(
            f"{what}: no safetensors weights (lmlerp never unpickles .bin/.pt files). Pick a "
            "revision that has model.safetensors — the hub's conversion bot publishes one as a "
            "pull-request ref such as refs/pr/1 — or convert the weights yourself in a sandbox."
        )
    pickles = [p.name for p in directory.rglob("*") if p.suffix in PICKLE_SUFFIXES]
    if pickles:
        raise HubError(f"{what}: refusing pickled files {sorted(pickles)}")


def fetch(
    source: Mapping[str, Any],
    out: str | os.PathLike,
    *,
    repo_type: str = "model",
    files: Sequence[str] | None = None,
    offline_mode: bool = False,
) -> dict[str, Any]:
    """Materialise `source` as the local directory `out` (atomically) and return its manifest.

    Args:
        source: ``{repo, revision}`` (hub) or ``{path}`` (a local directory standing in for it).
        out: the directory to create, e.g. ``resources/hub/theta0``.
        repo_type: "model" (checked: config + safetensors, no pickle) or "dataset".
        files: glob patterns of the files to take; models default to `MODEL_FILES`.
        offline_mode: never contact the hub (see `offline`).
    """
    patterns = list(files or (MODEL_FILES if repo_type == "model" else ("*",)))
    if repo_type == "model" and any(p.endswith(PICKLE_SUFFIXES) for p in patterns):
        raise HubError(f"{describe(source)}: pickled weight files cannot be requested: {patterns}")
    if "path" in source:
        root = Path(source["path"]).expanduser()
        if not root.is_dir():
            raise HubError(f"local source '{root}' is not a directory")
        manifest: dict[str, Any] = {"path": str(root.resolve())}
    else:
        root = _snapshot(source, repo_type, patterns, offline(offline_mode))
        manifest = {"repo": source["repo"], "revision": source["revision"], "commit": root.name}
    chosen = [f for f in _selected(root, patterns) if f.suffix not in PICKLE_SUFFIXES]
    if not chosen:
        raise HubError(f"{describe(source)}: no file matches {patterns}")
    manifest["files"] = {f.relative_to(root).as_posix(): f.stat().st_size for f in chosen}
    with atomic_path(out, directory=True) as tmp:
        _publish(chosen, root, tmp)
        if repo_type == "model":
            check_model_directory(tmp, describe(source))
        write_json(tmp / "fetch.json", manifest)
    return manifest


def fetch_file(
    location: str, out: str | os.PathLike, sha256: str | None, offline_mode: bool
) -> str:
    """Copy a file from a URL (http/https) or a local path to `out`, atomically; return its sha256.

    A given `sha256` must match, so a moved or edited file upstream stops the run instead of
    silently changing the prompts.
    """
    with atomic_path(out) as tmp:
        if location.startswith(("http://", "https://")):
            if offline(offline_mode):
                raise HubError(f"offline mode: cannot download {location}; give a local path")
            try:
                with urllib.request.urlopen(location, timeout=60) as response, open(tmp, "wb") as f:
                    shutil.copyfileobj(response, f)
            except OSError as error:
                raise HubError(f"cannot download {location}: {error}") from error
        else:
            path = Path(location).expanduser()
            if not path.is_file():
                raise HubError(f"prompt file '{location}' does not exist")
            shutil.copyfile(path, tmp)
        digest = hashlib.sha256(Path(tmp).read_bytes()).hexdigest()
        if sha256 is not None and digest != sha256:
            raise HubError(f"{location}: sha256 {digest} does not match the config's {sha256}")
    return digest
