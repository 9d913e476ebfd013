"""Generation: exact nucleus sampling, logit combiners (plain, DExperts) and the batched sampler."""

from lmlerp._lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "Combine": "combiners",
        "TOP_K": "nucleus",
        "decode": "sampler",
        "dexperts": "combiners",
        "generate_table": "sampler",
        "next_token": "nucleus",
        "plain": "combiners",
        "sample": "sampler",
        "top_p_filter": "nucleus",
    },
)
