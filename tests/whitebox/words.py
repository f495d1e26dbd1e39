"""A tiny real tokenizer for the white-box tests: one token per word or punctuation run.

Built offline from a ``tokenizers`` WordLevel model with a ``<bos>`` post-processor, so it
behaves like Gemma's where it matters here: BOS first, character offsets per token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace
from tokenizers.processors import TemplateProcessing
from transformers import PreTrainedTokenizerFast

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
BOS = 1


def word_tokenizer(texts: Iterable[str]) -> PreTrainedTokenizerFast:
    """A tokenizer whose vocabulary is the specials plus every word of ``texts``."""
    words = sorted({w for text in texts for w in re.findall(r"\w+|[^\w\s]+", text)})
    vocab = {token: i for i, token in enumerate((*SPECIALS, *words))}
    model = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    model.pre_tokenizer = Whitespace()
    model.post_processor = TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", BOS)])
    return PreTrainedTokenizerFast(
        tokenizer_object=model,
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
        pad_token="<pad>",
    )
