"""Files on disk: atomic writers and readers, safetensors checkpoints, tokenizer directories."""

from lmlerp._lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "CheckpointError": "checkpoints",
        "EOS": "tokenizer",
        "atomic_path": "atomic",
        "check_finite": "checkpoints",
        "check_tensors": "checkpoints",
        "fingerprint": "tokenizer",
        "link_copy": "atomic",
        "read_json": "atomic",
        "read_parquet": "atomic",
        "remove_stale_temporaries": "atomic",
        "require_safetensors": "checkpoints",
        "write_json": "atomic",
        "write_parquet": "atomic",
        "write_tsv": "atomic",
    },
)
