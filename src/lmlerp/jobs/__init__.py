"""Running one Snakemake job: its start-up, its GPU, and a one-line diagnosis when it fails."""

from lmlerp._lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "DeviceError": "devices",
        "claim": "devices",
        "code": "code",
        "deterministic": "entry",
        "diagnosis": "failure",
        "install": "failure",
        "setup": "entry",
        "start": "entry",
    },
)
