"""Tiny random Hugging Face models standing in for hub repositories (no network)."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
    RobertaConfig,
    RobertaForSequenceClassification,
)

WORDS = ["the", "movie", "was", "good", "bad", "great", "boring", "awful", "fun", "a", "plot"]
WORDS += ["and", "but", "not", "very"]


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """Whitespace word-level tokenizer: <pad> 0, <s> 1, </s> 2, <unk> 3, then WORDS.

    Like RoBERTa's, it wraps a text in <s> … </s> (so an empty text still has tokens) unless
    add_special_tokens=False, as the judge LM's perplexity asks.
    """
    vocab = {t: i for i, t in enumerate(["<pad>", "<s>", "</s>", "<unk>", *WORDS])}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=raw,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=32,
    )


def save_classifier(directory, num_labels: int, bias: list[float] | None = None):
    """A random 1-layer RoBERTa classifier; with `bias`, logits = bias for every input."""
    tokenizer = tiny_tokenizer()
    cfg = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=40,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        num_labels=num_labels,
    )
    torch.manual_seed(0)
    model = RobertaForSequenceClassification(cfg).eval()
    if bias is not None:
        with torch.no_grad():
            model.classifier.out_proj.weight.zero_()  # logits = out_proj.bias, whatever the text
            model.classifier.out_proj.bias.copy_(torch.tensor(bias))
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return model, tokenizer


def save_causal_lm(directory):
    tokenizer = tiny_tokenizer()
    cfg = GPT2Config(
        vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=2,
        bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )  # fmt: skip
    torch.manual_seed(1)
    model = GPT2LMHeadModel(cfg).eval()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return model, tokenizer


def write_hub(root: Path, sentiment_bias: list[float] | None = None) -> None:
    """resources/hub stand-ins under `root`: sentiment (3 classes), grammar (2), judge_lm."""
    save_classifier(root / "sentiment", 3, bias=sentiment_bias)
    save_classifier(root / "grammar", 2)
    save_causal_lm(root / "judge_lm")
