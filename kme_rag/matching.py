"""Answer matching: does a model's answer state a given object? One rule for every metric."""

from __future__ import annotations

import re
import string

__all__ = ["contains_answer", "normalise_answer"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
# ASCII punctuation and the typographic quotes models write (a curly possessive "Ukraine's"
# still states "Ukraine")
_QUOTES = "\u2018\u2019\u201c\u201d\u00ab\u00bb"
_PUNCT = str.maketrans({c: " " for c in string.punctuation + _QUOTES})


def normalise_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (SQuAD-style)."""
    text = text.casefold().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def contains_answer(answer: str, target: str) -> bool:
    """Whether ``target`` occurs in ``answer`` as whole words, after normalisation."""
    want = normalise_answer(target)
    if not want:
        return False
    return f" {want} " in f" {normalise_answer(answer)} "
