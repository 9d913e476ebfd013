"""Scoring: the sentiment, grammar and judge-LM plug-ins, and the text metrics they rest on."""

from lmlerp._lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "Scorers": "scorers",
        "SentimentJudge": "sentiment_judge",
        "conditional_perplexity": "perplexity",
        "distinct_by_prompt": "text",
        "distinct_n": "text",
        "grammar_ok": "text",
        "mean_perplexity": "perplexity",
        "next_token_probabilities": "perplexity",
    },
)
