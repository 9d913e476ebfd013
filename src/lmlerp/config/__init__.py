"""Configuration: the closed JSON schema (package data) and the rules it cannot express.

`validate(config)` runs before any job; `check_device` when a local run starts; `parts` says
which optional parts of the experiment a config has.
"""

from lmlerp._lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "ConfigError": "checks",
        "check_device": "checks",
        "visible_cuda_devices": "checks",
        "budgets": "parts",
        "decorrelated": "parts",
        "gguf_parts": "parts",
        "pretrained_here": "parts",
        "key_path": "validation",
        "load": "validation",
        "fingerprint": "validation",
        "schema": "validation",
        "validate": "validation",
    },
)
