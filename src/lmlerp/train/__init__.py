"""Training: pretraining θ0 and θC4, fine-tuning θ+ and θ−, selecting the best candidate."""

from lmlerp._lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "Batch": "batches",
        "Optimisation": "loop",
        "context_length": "loss",
        "mean_nll": "loss",
        "sentence_nll": "loss",
        "train": "loop",
    },
)
