"""Mode connectivity: seed classifiers, barriers along lines between them, Bezier curves, tables.

Thaman's report, Juneja et al. 2022 (https://arxiv.org/abs/2205.12411), Frankle et al. 2020,
Qin et al. 2022 and Garipov et al. 2018.
"""

from lmlerp._lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "METRICS": "metrics",
        "barrier_height": "metrics",
        "bezier_vs_line": "curves",
        "convexity_gap": "metrics",
        "curve_metrics": "metrics",
        "improved_convexity_gap": "metrics",
        "rebasin_barrier": "metrics",
        "report_table": "tables",
        "seed_pair_lines": "curves",
    },
)
