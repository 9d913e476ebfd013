"""Pick the fine-tuning candidate with the lowest validation perplexity (Rofin et al. 2022 §3).

Kept free of torch so that the selection job starts in a fraction of a second.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd


def select(results: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Table of all candidates with a `selected` column: the lowest val_ppl (ties: first name).

    Raises ValueError if any candidate's val_ppl is not finite (a diverged run must not win by
    accident, nor be dropped silently).
    """
    if not results:
        raise ValueError("no fine-tuning candidates to select from")
    table = pd.DataFrame(results).sort_values("candidate").reset_index(drop=True)
    bad = table[~table.val_ppl.map(math.isfinite)]
    if not bad.empty:
        raise ValueError(f"candidate '{bad.candidate.iloc[0]}' has a non-finite val_ppl")
    table["selected"] = False
    table.loc[table.val_ppl.idxmin(), "selected"] = True
    return table


def selected(table: pd.DataFrame, source: str = "a candidate table") -> str:
    """The name of the one selected candidate of a table written by `select` (read from
    `source`, named in the error)."""
    names = table.candidate[table.selected.astype(bool)].tolist()
    if len(names) != 1:
        raise ValueError(f"{source} must select exactly one candidate, not {names}")
    return names[0]
