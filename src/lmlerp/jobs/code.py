"""Code fingerprints: a rule re-runs when the code it runs changes, not when a comment does.

`code(script)` is the sha256 over the abstract syntax trees of a job's script and of every
lmlerp module it imports, transitively — top-level and lazy imports inside functions alike, and
the lazy public faces of the sub-packages (`_lazy.exports` tables) resolved to the modules they
name. An AST has no comments, and docstrings are dropped before dumping, so editing either
changes nothing; any other edit of a module the job can reach changes the fingerprint. A rule
passes it as `params: code=...`, so Snakemake re-runs its jobs (`--list-changes params` lists
them); `jobs.start` drops it before the params reach the task.

Parsing runs at every Snakefile parse: each file's digest and imports are memoised per
(path, mtime, size), in memory and in `CACHE` (a no-op re-run reads one small JSON file).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from functools import cache
from pathlib import Path

PACKAGE = "lmlerp"
ROOT = Path(__file__).resolve().parents[1]  # src/lmlerp
CACHE = Path(".snakemake/lmlerp/code.json")

# path → (stamp, digest, imported names, exports table of a lazy package face)
_memo: dict[str, tuple[list[int], str, list[str], dict[str, str]]] = {}
_loaded = False
_dirty = False


def code(script: str | os.PathLike) -> str:
    """sha256 of the docstring-free ASTs of `script` and every lmlerp module it reaches."""
    _load()
    seen: dict[str, str] = {}
    todo = [Path(script).resolve()]
    while todo:
        path = todo.pop()
        if str(path) in seen:
            continue
        digest, imports, _ = _parsed(path)
        seen[str(path)] = digest
        todo.extend(p for name in imports for p in resolve(name))
    _save()
    names = {_relative(Path(p)): d for p, d in seen.items()}
    return hashlib.sha256(json.dumps(names, sort_keys=True).encode()).hexdigest()


@cache
def resolve(name: str) -> list[Path]:
    """The files `name` brings in: a module with its packages, or, for a name a package exports
    lazily (`from lmlerp.score import Scorers`), the module its exports table names."""
    files = module_files(name)
    package, _, attribute = name.rpartition(".")
    if files and _module_name(files[-1]) == name:
        return files
    parent = module_files(package)
    if not parent or parent[-1].name != "__init__.py":
        return files
    exported = _parsed(parent[-1])[2].get(attribute)
    return [*files, *(module_files(f"{package}.{exported}") if exported else [])]


@cache
def module_files(name: str) -> list[Path]:
    """The source files of lmlerp module `name` and of the packages above it ([] if none)."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return []
    files = []
    for k in range(1, len(parts) + 1):
        base = ROOT.joinpath(*parts[1:k])
        for candidate in (base / "__init__.py", base.with_suffix(".py")):
            if candidate.is_file():
                files.append(candidate)
                break
    return files


@cache
def _parsed(path: Path) -> tuple[str, list[str], dict[str, str]]:
    """(digest of the docstring-free AST dump, imported names, exports table) of one file,
    memoised (read at most once per process: it does not change while a Snakefile parses)."""
    stat = path.stat()
    stamp = [stat.st_mtime_ns, stat.st_size]
    held = _memo.get(str(path))
    if held is None or held[0] != stamp:
        tree = ast.parse(path.read_text(), filename=str(path))
        imports = _imports(tree, _module_name(path))
        exports = _exports(tree)
        _strip_docstrings(tree)
        digest = hashlib.sha256(ast.dump(tree).encode()).hexdigest()
        held = _memo[str(path)] = (stamp, digest, imports, exports)
        global _dirty
        _dirty = True
    return held[1], held[2], held[3]


def _imports(tree: ast.Module, module: str | None) -> list[str]:
    """lmlerp names imported anywhere in `tree` (function bodies included).

    `from a.b import c` yields a.b and a.b.c (c a sub-module or a name a.b exports: `resolve`).
    """
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module)
            found += [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return [name for name in found if name.split(".")[0] == PACKAGE]


def _exports(tree: ast.Module) -> dict[str, str]:
    """The table of a lazy package face, `exports(__name__, {name: module})` ({} if none):
    only the names a job imports count, not the whole package."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "exports":
            table = next((a for a in node.args if isinstance(a, ast.Dict)), None)
            if table is not None:
                return {
                    k.value: v.value
                    for k, v in zip(table.keys, table.values, strict=True)
                    if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)
                }
    return {}


def _absolute(node: ast.ImportFrom, module: str | None) -> str:
    """The absolute module of a `from … import`, relative levels resolved against `module`."""
    if not node.level or module is None:
        return node.module or ""
    parent = module.split(".")[: -node.level]
    return ".".join([*parent, *([node.module] if node.module else [])])


def _module_name(path: Path) -> str | None:
    """The dotted name of a file inside the lmlerp package (a package's own name for __init__)."""
    try:
        parts = path.relative_to(ROOT).with_suffix("").parts
    except ValueError:
        return None
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join([PACKAGE, *parts])


def _strip_docstrings(tree: ast.AST) -> None:
    """Drop the docstring of the module and of every class and function, in place."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            value = first.value if isinstance(first, ast.Expr) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                node.body = node.body[1:] or [ast.Pass()]


def _relative(path: Path) -> str:
    """A file's name in the fingerprint: inside the package relative to it, else its file name,
    so that the same code in another checkout has the same fingerprint."""
    try:
        return f"{PACKAGE}/{path.relative_to(ROOT)}"
    except ValueError:
        return path.name


def _load() -> None:
    """Fill the memo from `CACHE` once per process (a missing or broken file is ignored)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    try:
        stored = json.loads(CACHE.read_text())
        _memo.update({p: (v[0], v[1], v[2], v[3]) for p, v in stored.items()})
    except (OSError, ValueError, TypeError, IndexError, KeyError):
        pass


def _save() -> None:
    """Write the memo to `CACHE` atomically when a file was parsed anew."""
    global _dirty
    if not _dirty:
        return
    _dirty = False
    fresh = {p: list(v) for p, v in _memo.items()}
    try:
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        tmp = CACHE.with_name(f"{CACHE.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(fresh))
        tmp.replace(CACHE)
    except OSError:
        pass  # a read-only working directory: fingerprints still work, only slower
