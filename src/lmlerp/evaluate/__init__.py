"""Evaluation: every path point rebuilt in memory, sampled and scored, a chunk of points per job."""

from lmlerp._lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "Data": "chunk",
        "evaluate_chunk": "chunk",
        "point_metrics": "chunk",
        "score_samples": "chunk",
    },
)
