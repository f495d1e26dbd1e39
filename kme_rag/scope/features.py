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
from dataclasses import dataclass, replace

import numpy as np

from kme_rag.memory.aliases import subject_names
from kme_rag.memory.catalogue import load_catalogue
from kme_rag.memory.edit import Edit
from kme_rag.memory.mention import MASK, Mention, asking_sentence, find_mention, name_tokens

__all__ = [
    "N_SCALARS",
    "PairMention",
    "pair_features",
    "pair_mention",
    "relation_text",
    "relation_texts_of",
]

N_SCALARS = 8  # relation cosine, retrieval score, exact in the asking sentence, exact
# earlier, 1/name words, extended, asks a quantity of a non-numeric object, of a numeric one
# "When was X founded?", "how many people live in X": the answer is a date or a number.
# MiniLM puts "In which year was X founded?" at 0.92 from "X was founded by": the words
# are the relation's, the answer type is not.
_QUANTITY = re.compile(
    r"\b(?:when|what year|which year|what date|in (?:what|which) (?:year|century|decade)"
    r"|how (?:many|much|old|tall|long|high|big|large|far|deep|wide))\b"
)
_NUMERIC = re.compile(r"\b\d{3,4}\b|^\W*\d[\d.,]*\W*\w*\W*$")


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
    def asks_quantity(self) -> bool:
        """Whether the question asks for a date or a number ("in which year", "how
        many"), read around the mention."""
        return bool(_QUANTITY.search(self.masked.casefold()))

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


def pair_mention(query: str, edit: Edit) -> PairMention:
    """How ``query`` names ``edit``'s subject (nothing for an unstructured edit).

    The sentence that asks (:func:`~kme_rag.memory.mention.asking_sentence`) is searched
    first: in "I found a record of Jimi Hendrix. What instrument did Jimi Hendrix play?
    I'm new to rock." the mention that matters is the question's, and the relation is
    read from that sentence alone. Failing that, the whole query (a sentence splitter
    would cut "Robert A. Millikan" at "A."); ``elsewhere`` records that the mention lies
    wholly before the asking sentence ("Which position does X play? They play as").
    """
    names = subject_names(edit)
    norm = unicodedata.normalize("NFKC", query)
    words = 1.0 / max(1, len(name_tokens(names[0]))) if names else 1.0
    focus = asking_sentence(norm)
    if focus != norm:
        inside = find_mention(focus, names)
        if inside.exact:
            offset = norm.rfind(focus)
            shifted = replace(inside, start=inside.start + offset, end=inside.end + offset)
            return PairMention(shifted, False, words)
    mention = find_mention(query, names)
    if not mention.exact:
        return PairMention(mention, False)
    focus_start = norm.rfind(focus)
    return PairMention(mention, mention.end <= focus_start, words)


def numeric_object(edit: Edit) -> bool:
    """Whether the edit's object is a date or a number ("1976", "14 May 1971", "42")."""
    return any(bool(_NUMERIC.search(o)) for o in (edit.target_new, edit.target_true) if o)


def relation_text(edit: Edit) -> str | None:
    """The edit's question with the subject masked: ``"The mother tongue of X is"``."""
    template = edit.template()
    if template:
        return template.format(MASK)
    if edit.relation:
        return f"The {edit.relation} of {MASK} is"
    return None


def relation_texts_of(edit: Edit) -> list[str]:
    """The texts an edit's relation is compared by: :func:`relation_text`, and for a fact
    read from free text (``derived_from``) whose prompt is the sentence's own phrasing
    ("The X moved to"), also its catalogue relation's cloze ("X is located in"): a
    question may ask in either's words."""
    first = relation_text(edit)
    if first is None:
        return []
    out = [first]
    if edit.derived_from and edit.relation_id:
        known = load_catalogue().get(edit.relation_id)
        if known is not None and known.cloze.format(MASK) != first:
            out.append(known.cloze.format(MASK))
    return out


def pair_features(
    queries: np.ndarray,
    relations: np.ndarray,
    mentions: Sequence[PairMention],
    retrieval: np.ndarray,
    numeric: Sequence[bool],
) -> np.ndarray:
    """(pairs, N_SCALARS + 2·dim) features from unit masked-query and relation embeddings,
    the mentions, the retrieval score (cosine of the query, or its asking sentence, with
    the edit's whole statement, as :meth:`EditMemory.candidates` reports it) and whether
    each edit's object is numeric (:func:`numeric_object`)."""
    assert queries.shape == relations.shape and len(mentions) == len(queries) == len(retrieval)
    assert len(numeric) == len(mentions)
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
                float(m.asks_quantity and not number),
                float(m.asks_quantity and number),
            ]
            for m, number in zip(mentions, numeric, strict=True)
        ],
        dtype=np.float32,
    ).reshape(len(mentions), N_SCALARS)  # (pairs, N_SCALARS)
    scalars[:, 0] = cosine
    scalars[:, 1] = retrieval
    products = queries * relations  # (pairs, dim)
    gaps = np.abs(queries - relations)  # (pairs, dim)
    return np.concatenate([scalars, products, gaps], axis=1).astype(np.float32)
