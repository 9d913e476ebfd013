"""One byte-level BPE shared by θ0 and θC4, trained on θ0's corpus.

Why our own and not GPT-2's 50,257-token BPE: the output layer of a 1.9M-parameter model is
vocabulary × width, so GPT-2's vocabulary would make the offline models several times slower to
train for no gain on 3 MB of text (DESIGN §3 measures ≈660 vs ≈3,700 train tokens/s). The paper
scale uses GPT-2's own tokenizer through `from_pretrained`.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from lmlerp.io.tokenizer import EOS


def train(texts: Iterable[str], vocab_size: int, min_frequency: int) -> PreTrainedTokenizerFast:
    """Train a GPT-2-style byte-level BPE (prefix-space off, byte fallback via the 256 bytes)."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=EOS, eos_token=EOS, unk_token=EOS, pad_token=EOS
    )
