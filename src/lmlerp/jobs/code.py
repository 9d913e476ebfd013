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

_memo: dict[str, tuple[list[int], str, list[str]]] = {}  # path → (stamp, digest, imports)
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
        digest, imports = _parsed(path)
        seen[str(path)] = digest
        todo.extend(p for name in imports for p in module_files(name))
    _save()
    names = {_relative(Path(p)): d for p, d in seen.items()}
    return hashlib.sha256(json.dumps(names, sort_keys=True).encode()).hexdigest()


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
def _parsed(path: Path) -> tuple[str, list[str]]:
    """(digest of the docstring-free AST dump, imported module names) of one file, memoised
    (a file is read at most once per process: it does not change while a Snakefile parses)."""
    stat = path.stat()
    stamp = [stat.st_mtime_ns, stat.st_size]
    held = _memo.get(str(path))
    if held is None or held[0] != stamp:
        tree = ast.parse(path.read_text(), filename=str(path))
        imports = _imports(tree, _module_name(path))
        _strip_docstrings(tree)
        digest = hashlib.sha256(ast.dump(tree).encode()).hexdigest()
        held = _memo[str(path)] = (stamp, digest, imports)
        global _dirty
        _dirty = True
    return held[1], held[2]


def _imports(tree: ast.Module, module: str | None) -> list[str]:
    """lmlerp modules named by the imports anywhere in `tree` (function bodies included).

    `from a.b import c` yields a.b and a.b.c (c may be a sub-module); an `exports` table of a
    package's lazy public face yields the modules its names resolve to.
    """
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module)
            found += [base, *(f"{base}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "exports":
            table = next((a for a in node.args if isinstance(a, ast.Dict)), None)
            if table is not None and module is not None:
                named = [v.value for v in table.values if isinstance(v, ast.Constant)]
                found += [f"{module}.{name}" for name in named]
    return [name for name in found if name.split(".")[0] == PACKAGE]


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
        _memo.update({p: (v[0], v[1], v[2]) for p, v in stored.items()})
    except (OSError, ValueError, TypeError, IndexError):
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
