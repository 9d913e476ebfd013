"""The report: the paper's figures, the connectivity figures and results/summary.json."""

from lmlerp._lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {"save": "figures", "stage_timings": "summary", "provenance": "summary"},
)
