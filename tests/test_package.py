"""The package itself: its layering, its schema, the docs that quote it, a non-editable install."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from lmlerp.config import reference, schema

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "lmlerp"
# Parse time: the modules the workflow imports while Snakemake builds the DAG.
PARSE_TIME = ["lmlerp.config", "lmlerp.space.paths", "lmlerp.space.labels"]


def test_parsing_the_workflow_imports_neither_torch_nor_transformers():
    code = (
        f"import sys; import {', '.join(PARSE_TIME)}; lmlerp.config.validate; "
        "print(sorted(m for m in ('torch', 'transformers', 'pandas') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def _string_constants(tree: ast.AST) -> list[ast.Constant]:
    """String literals that are not docstrings."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        and id(node) not in docstrings
    ]  # fmt: skip


def test_the_library_names_no_workflow_path():
    """Paths flow down from the rules as arguments: no results/ or resources/ path in src/."""
    found = [
        f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}"
        for path in sorted(SRC.rglob("*.py"))
        for node in _string_constants(ast.parse(path.read_text()))
        if re.search(r"(^|[^\w])(results|resources|benchmarks|logs)/", node.value)
    ]
    assert found == []


def test_no_module_is_longer_than_350_lines():
    long = {
        str(p.relative_to(REPO)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 350
    }
    assert long == {}


def test_every_key_of_the_schema_has_a_description_and_nothing_stray():
    """An unquoted comma in a YAML flow mapping silently cuts a description and adds a key."""

    def nulls(node, where=""):
        if isinstance(node, dict):
            for key, value in node.items():
                if value is None:
                    yield f"{where}.{key}"
                yield from nulls(value, f"{where}.{key}")
        elif isinstance(node, list):
            for value in node:
                yield from nulls(value, where)

    assert list(nulls(schema())) == []
    undocumented = [key for key, _, _, description in reference.entries() if not description]
    assert undocumented == []


def test_the_configuration_reference_is_the_schemas():
    committed = (REPO / "docs" / "configuration.md").read_text()
    assert committed == reference.markdown(), (
        "run: python -m lmlerp.config.reference > docs/configuration.md"
    )


DOCUMENTED = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])
# Backticked dotted names whose first part is a top-level config key: `section.key[.key…]`.
TOP_LEVEL = set(schema()["properties"])
KEY = re.compile(r"`([a-z_0-9]+(?:\.[a-z_0-9<>]+)+)(?:[:=][^`]*)?`")


FILE = re.compile(r"\.(safetensors|json|parquet|tsv|png|yaml|py|md|txt|gguf|log)$")


def config_keys_named(text: str) -> list[str]:
    keys = KEY.findall(text)
    return [k for k in keys if k.split(".", 1)[0] in TOP_LEVEL and not FILE.search(k)]


@pytest.mark.parametrize("page", DOCUMENTED, ids=[p.name for p in DOCUMENTED])
def test_every_config_key_the_docs_name_is_in_the_schema(page):
    keys = config_keys_named(page.read_text())
    unknown = [k for k in keys if not reference.known(re.sub(r"\[\d+\]", "", k))]
    assert unknown == []


def test_the_docs_key_check_catches_a_stale_key():
    assert config_keys_named("set `hub.models.theta0`, `finetune.lrr`, `model.safetensors`") == [
        "hub.models.theta0",
        "finetune.lrr",
    ]
    assert reference.known("hub.models.theta0") and not reference.known("finetune.lrr")


def test_a_non_editable_install_carries_the_schema(tmp_path):
    source, target = tmp_path / "source", tmp_path / "site"  # a copy: setuptools builds in-tree
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)],
        check=True, capture_output=True,
    )  # fmt: skip
    assert (target / "lmlerp" / "config" / "schema.yaml").is_file()
    # -S: no site-packages .pth files, so the editable install of this checkout is not seen
    paths = [str(target), sysconfig.get_paths()["purelib"]]
    code = f"import sys; sys.path[:0] = {paths!r}; import lmlerp.config as c; print(c.__file__)"
    done = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(target))
    loaded = yaml.safe_load((REPO / "config.yaml").read_text())
    code = (
        f"import sys; sys.path[:0] = {paths!r}; import lmlerp.config as c; c.validate({loaded!r})"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_the_architecture_page_maps_every_module():
    page = (REPO / "docs" / "architecture.md").read_text()
    modules = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if p.name != "__init__.py")
    assert [m for m in modules if f"`{m}`" not in page] == []
