"""The judge LM: loading a converted judge, on a tiny Llama written to tmp_path."""

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from lmlerp.score import judge_lm


@pytest.fixture
def tiny_hf_dir(tmp_path):
    """A random tiny Llama and a word-level tokenizer, written with save_pretrained."""
    vocab = {"[UNK]": 0, "<s>": 1, "</s>": 2, **{f"w{i}": i + 3 for i in range(61)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", bos_token="<s>", eos_token="</s>"
    )
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    return tmp_path / "tiny"


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_load_gives_an_eval_model_in_the_asked_dtype(tiny_hf_dir, dtype):
    model, tokenizer = judge_lm.load(tiny_hf_dir, dtype=dtype)
    assert model.dtype == judge_lm.DTYPES[dtype]
    assert not model.training
    assert model.device == torch.device("cpu")
    assert tokenizer("w1 w2").input_ids == [4, 5]


def test_load_names_the_valid_dtypes(tiny_hf_dir):
    with pytest.raises(ValueError, match=r"'fp8'.*bfloat16"):
        judge_lm.load(tiny_hf_dir, dtype="fp8")
