"""Pair features for the scope classifier: does this query ask this edit's question?

A query is in scope of a structured edit when it names the edit's subject *and* asks for
the edit's relation. Both halves are read separately:

- **subject**: whether and where the query names the subject exactly (or an alias), and
  whether that name runs on into a longer one (:class:`PairMention`); a query that does
  not name the subject is out of scope without scoring;
- **relation**: the query with the subject masked (``"X is a native speaker of"``)
  embedded next to the edit's relation text (``"The mother tongue of X is"``): their
  cosine, element-wise product and absolute difference (the sentence-pair features of
  InferSent / Sentence-BERT), from which the trained head learns which phrasings ask for
  the same relation;
- **topic**: the retrieval score, the query's cosine with the edit's whole statement
  (low for a question that merely names the subject: "when did the revolution occur in
  Iran" against "In Iran, the language spoken is Finnish").

Pure functions of strings and vectors; the embedding is done by the caller.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kme_rag.memory.edit import Edit
from kme_rag.memory.mention import MASK, Mention, find_mention, last_sentence, name_tokens

__all__ = ["N_SCALARS", "PairMention", "pair_features", "pair_mention", "relation_text"]

N_SCALARS = 6  # relation cosine, retrieval score, exact in the last sentence, exact earlier,
# 1/name words, extended


@dataclass(frozen=True)
class PairMention:
    """How a query names an edit's subject, and the text to embed for the relation.

    ``elsewhere``: the exact mention lies wholly before the query's last sentence.
    """

    mention: Mention
    elsewhere: bool
    words: float = 1.0  # 1 / the subject's word count: one-word names are the ambiguous ones

    @property
    def exact(self) -> bool:
        return self.mention.exact

    @property
    def masked(self) -> str:
        """The masked text from at most :data:`WINDOW` words before the mention: the
        relation is asked around the subject, and a long preamble only adds noise."""
        return crop(self.mention.masked)


WINDOW = 6
_TOKEN = re.compile(r"\S+")
_MASKED = re.compile(rf"(?<!\w){MASK}(?!\w)")


def crop(masked: str, window: int = WINDOW) -> str:
    """``masked`` from ``window`` words before its first :data:`MASK` onwards."""
    words = [m for m in _TOKEN.finditer(masked)]
    first = next((i for i, m in enumerate(words) if _MASKED.search(m.group())), None)
    if first is None or first <= window:
        return masked
    return masked[words[first - window].start() :]


def subject_names(edit: Edit) -> tuple[str, ...]:
    return (edit.subject, *edit.subject_aliases) if edit.subject else ()


def pair_mention(query: str, edit: Edit) -> PairMention:
    """How ``query`` names ``edit``'s subject (nothing for an unstructured edit).

    The whole query is searched (a sentence splitter would cut "Robert A. Millikan" at
    "A."); ``elsewhere`` records that the mention lies wholly before the last sentence
    ("Which position does X play? They play as").
    """
    names = subject_names(edit)
    mention = find_mention(query, names)
    if not mention.exact:
        return PairMention(mention, False)
    norm = unicodedata.normalize("NFKC", query)
    focus_start = norm.rfind(last_sentence(norm))
    words = 1.0 / max(1, len(name_tokens(names[0])))
    return PairMention(mention, mention.end <= focus_start, words)


def relation_text(edit: Edit) -> str | None:
    """The edit's question with the subject masked: ``"The mother tongue of X is"``."""
    template = edit.template()
    if template:
        return template.format(MASK)
    if edit.relation:
        return f"The {edit.relation} of {MASK} is"
    return None


def pair_features(
    queries: np.ndarray,
    relations: np.ndarray,
    mentions: Sequence[PairMention],
    retrieval: np.ndarray,
) -> np.ndarray:
    """(pairs, N_SCALARS + 2·dim) features from unit masked-query and relation embeddings,
    the mentions, and the retrieval score (cosine of the query, or its last sentence,
    with the edit's whole statement, as :meth:`EditMemory.candidates` reports it)."""
    assert queries.shape == relations.shape and len(mentions) == len(queries) == len(retrieval)
    cosine = (queries * relations).sum(axis=1)  # (pairs,)
    scalars = np.array(
        [
            [
                1.0,
                0.0,
                float(m.mention.exact and not m.elsewhere),
                float(m.elsewhere),
                m.words,
                float(m.mention.extended),
            ]
            for m in mentions
        ],
        dtype=np.float32,
    ).reshape(len(mentions), N_SCALARS)  # (pairs, N_SCALARS)
    scalars[:, 0] = cosine
    scalars[:, 1] = retrieval
    products = queries * relations  # (pairs, dim)
    gaps = np.abs(queries - relations)  # (pairs, dim)
    return np.concatenate([scalars, products, gaps], axis=1).astype(np.float32)
