"""Code fingerprints: docstrings and comments change nothing, code anywhere downstream does."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from workflow_helpers import copy_run, job_counts, snakemake

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
    fingerprints.resolve.cache_clear()
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


def test_a_dry_run_re_runs_the_rules_whose_code_changed(tiny_run, tmp_path):
    """With a copy of the package on PYTHONPATH: a docstring edit plans nothing, an edit of the
    scorers plans the evaluate jobs (and what follows), not training."""
    src = tmp_path / "src"
    shutil.copytree(SRC, src / "lmlerp", ignore=shutil.ignore_patterns("__pycache__"))
    work = copy_run(tiny_run, tmp_path / "run")
    env = {**os.environ, "PYTHONPATH": str(src)}
    scorers = src / "lmlerp" / "score" / "scorers.py"
    edit(scorers, '"""', '"""Edited. ')
    quiet = snakemake(work, "--dry-run", env=env)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert "Nothing to be done" in quiet.stdout + quiet.stderr
    edit(scorers, "\nimport", "\nEDITED = 1\nimport")
    planned = snakemake(work, "--dry-run", env=env)
    assert planned.returncode == 0, planned.stderr[-3000:]
    counts = job_counts(planned.stdout)
    assert counts["evaluate"] == 5 and "pretrain" not in counts and "finetune" not in counts
    changed = snakemake(work, "--list-changes", "params", env=env)
    assert "results/evaluate/g3/c0/points.parquet" in changed.stdout
