"""Tokenizer directories: `save_pretrained` layout, EOS as padding, a vocabulary fingerprint.

The offline default trains its own BPE (`lmlerp.data.bpe`); the paper scale uses GPT-2's through
`from_pretrained`. Either way every model directory carries its tokenizer, and bases that are
combined must share it (`fingerprint`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerFast

from lmlerp.io.atomic import atomic_path

EOS = "<|endoftext|>"  # GPT-2's convention: one token is BOS, EOS and padding


def save(tokenizer: PreTrainedTokenizerFast, directory: str | Path) -> None:
    """Write a `save_pretrained` tokenizer directory atomically."""
    with atomic_path(directory, directory=True) as tmp:
        tokenizer.save_pretrained(tmp)


def load(directory: str | Path) -> PreTrainedTokenizerFast:
    """Load a tokenizer directory; padding falls back to EOS, as in GPT-2."""
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def fingerprint(tokenizer: PreTrainedTokenizerFast) -> str:
    """A stable digest of the vocabulary, so that mismatched tokenizers are caught up front."""
    vocab = json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False)
    return hashlib.sha256(vocab.encode()).hexdigest()[:16]
