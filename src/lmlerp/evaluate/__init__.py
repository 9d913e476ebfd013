"""Evaluation: every path point rebuilt in memory, sampled and scored, a chunk of points per job;
then per-family tables with bootstrap intervals over prompts."""

from lmlerp._lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "Data": "chunk",
        "PointCache": "cache",
        "assemble": "chunk",
        "evaluate_points": "chunk",
        "family_table": "tables",
        "family_trends": "tables",
        "path_trends": "statistics",
        "point_intervals": "statistics",
        "point_key": "cache",
        "point_metrics": "chunk",
        "score_samples": "chunk",
    },
)
