"""Lazy public faces for the sub-packages: a re-exported name is imported on first use (PEP 562).

Why: Snakemake imports `lmlerp.config` and `lmlerp.space.paths` while it builds the DAG, and an
eager `__init__` that re-exported the torch modules of its package would import torch and
transformers there: 5.6 s of an 8.2 s no-op run. With these faces, `from lmlerp.space import
combine` still works, and costs torch only when it is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def exports(
    package: str, names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """`__getattr__`, `__dir__` and `__all__` of a package that re-exports `names`.

    Args:
        package: the package's `__name__`.
        names: public name → the submodule (relative to `package`) that defines it.
    """

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{names[name]}"), name)

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__, sorted(names)
