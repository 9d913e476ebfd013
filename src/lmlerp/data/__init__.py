"""Data: pinned offline assets and hub sources, the movie and corpus tables, BPE, prompt sets."""

from lmlerp._lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "AssetError": "assets",
        "HubError": "hub",
        "assign_shares": "splits",
        "build_corpus": "corpus",
        "judge_data": "movie",
        "normalise": "splits",
        "rating_to_label": "movie",
        "read_rated": "movie",
        "split_movie": "movie",
    },
)
