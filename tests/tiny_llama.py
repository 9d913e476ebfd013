"""A tiny random Llama standing in for a real pretrained θ0 of another architecture than GPT-2
(SmolLM2, Qwen, …): rotary positions (no position table), RMSNorm, grouped-query attention,
tied or untied embeddings, and a tokenizer without a pad token, as SmolLM2's base model."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from toy_text import TEXTS
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

EOS = "<|endoftext|>"
# 2 layers × 32 wide, 4 query heads sharing 2 key/value heads; 64 positions (rotary: no table)
SHAPE = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 64,
}


def tokenizer(texts: list[str] = TEXTS, vocab_size: int = 300) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on `texts` whose only special token is EOS = BOS: no pad token
    (`pad_token_id` is None), as SmolLM2 ships."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    out = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=EOS, eos_token=EOS)
    assert out.pad_token_id is None
    return out


def model(
    vocab: PreTrainedTokenizerFast, *, tied: bool = True, seed: int = 0, **shape: int
) -> LlamaForCausalLM:
    """A random `LlamaForCausalLM` of `SHAPE` (overridden by `shape`), seeded by `seed` alone
    (torch's global RNG is restored afterwards); no pad token in its config."""
    config = LlamaConfig(
        vocab_size=len(vocab),
        tie_word_embeddings=tied,
        bos_token_id=vocab.eos_token_id,
        eos_token_id=vocab.eos_token_id,
        pad_token_id=None,
        **(SHAPE | shape),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(config).eval()


def write(
    directory: Path,
    vocab: PreTrainedTokenizerFast | None = None,
    *,
    tied: bool = True,
    seed: int = 0,
    **shape: int,
) -> Path:
    """Write a tiny Llama and its tokenizer as a `save_pretrained` directory (safetensors)."""
    vocab = tokenizer() if vocab is None else vocab
    model(vocab, tied=tied, seed=seed, **shape).save_pretrained(directory, safe_serialization=True)
    vocab.save_pretrained(directory)
    return Path(directory)
