"""Code fingerprints: docstrings and comments change nothing, code anywhere downstream does."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lmlerp.jobs import code as fingerprints
from lmlerp.jobs import entry

SRC = Path(fingerprints.__file__).resolve().parents[1]


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A copy of the lmlerp package and a script importing evaluate.tasks, fingerprinted afresh."""
    root = tmp_path / "lmlerp"
    shutil.copytree(SRC, root, ignore=shutil.ignore_patterns("__pycache__"))
    script = tmp_path / "evaluate.py"
    script.write_text("from lmlerp.evaluate import tasks\n\ntasks.evaluate()\n")
    monkeypatch.setattr(fingerprints, "ROOT", root)
    monkeypatch.setattr(fingerprints, "CACHE", tmp_path / "code.json")
    monkeypatch.setattr(fingerprints, "_memo", {})
    monkeypatch.setattr(fingerprints, "_loaded", False)
    return root, script


def fresh(script: Path) -> str:
    """The fingerprint as a new Snakefile parse sees it (per-process memos cleared)."""
    fingerprints._parsed.cache_clear()
    fingerprints.module_files.cache_clear()
    return fingerprints.code(script)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_a_docstring_or_comment_edit_keeps_the_fingerprint(package):
    root, script = package
    before = fresh(script)
    edit(root / "score" / "text.py", '"""', '"""Edited. ')  # the module docstring
    edit(root / "generate" / "nucleus.py", "\nimport", "\n# a comment\nimport")
    assert fresh(script) == before


def test_an_edit_in_a_transitively_imported_module_changes_it(package):
    root, script = package
    before = fresh(script)
    # evaluate.tasks → (lazy, inside a function) evaluate.chunk → generate.sampler → nucleus
    edit(root / "generate" / "nucleus.py", "TOP_K = 256", "TOP_K = 128")
    assert fresh(script) != before


def test_an_unrelated_module_does_not_count(package):
    root, script = package
    before = fresh(script)
    edit(root / "connectivity" / "curves.py", "import", "import os  # noqa\nimport")
    assert fresh(script) == before


def test_the_closure_follows_lazy_imports_and_export_tables(package):
    _, script = package
    fresh(script)
    root = package[0]
    inside = [Path(p) for p in fingerprints._memo if root in Path(p).parents]
    reached = {p.relative_to(root).as_posix() for p in inside}
    assert {"evaluate/tasks.py", "evaluate/chunk.py", "generate/nucleus.py"} <= reached
    assert "score/sentiment_judge.py" in reached  # via score/__init__'s exports table


def test_fingerprints_persist_in_the_cache_file(package):
    _, script = package
    first = fresh(script)
    fingerprints._memo.clear()
    fingerprints._loaded = False
    assert fresh(script) == first
    assert fingerprints.CACHE.exists()


def test_jobs_start_drops_the_code_param(monkeypatch):
    monkeypatch.setattr(entry.failure, "install", lambda rule: None)

    class Params(dict):
        pass

    class Job:
        rule = "evaluate"
        input = output = None
        params = Params(code="abc", family="g3")

    _, _, params = entry.start(Job())
    assert params == {"family": "g3"}
