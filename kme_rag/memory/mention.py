"""Where a text names an entity: word tokens, exact and partial mentions, masking.

Pure functions over strings. A *mention* of a name is the name's word tokens appearing
contiguously in the text's word tokens (NFKC, case-folded), so ``"Tour-Eiffel"`` matches
``"tour eiffel"`` and ``"Eiffel Towers"`` does not match ``"Eiffel Tower"``. The scope
classifier reads its features from :class:`Mention`; the fact graph indexes names by
their tokens to find the stored subjects a query names.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "FUNCTION_WORDS",
    "MASK",
    "STOP_WORDS",
    "TWO_LETTER_WORDS",
    "Mention",
    "asking_sentence",
    "find_mention",
    "is_acronym",
    "name_tokens",
    "possessive_stems",
    "token_spans",
    "typed_as_acronym",
]

MASK = "X"  # what a masked mention becomes: "X is a citizen of"
# A word, keeping inner apostrophes ("you're" is not "you" + "re") but not a possessive
# "'s" ("Darrieux's" names "Darrieux").
_WORD = re.compile(r"\w+(?:['\u2019](?![sS]\b)\w+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
# Too common to count as naming an entity on their own ("the", "of" in "Bank of America").
STOP_WORDS = frozenset(
    {"a", "an", "and", "de", "del", "der", "des", "di", "du", "for", "in", "la", "le", "of"}
    | {"on", "the", "to", "von"}
)

NAME_JOINERS = frozenset({"of", "de", "du", "von", "van", "der", "di", "da"})
FUNCTION_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "if",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "people",
        "since",
        "that",
        "the",
        "their",
        "there",
        "these",
        "this",
        "those",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "whose",
        "why",
        "will",
        "with",
        "would",
    }
)


def name_tokens(text: str) -> list[str]:
    """A name's word tokens: ``"The Tour-Eiffel"`` → ``["the", "tour", "eiffel"]``."""
    return [m.group().casefold() for m in _WORD.finditer(unicodedata.normalize("NFKC", text))]


def token_spans(text: str) -> list[tuple[str, int, int]]:
    """(token, start, end) for each word of ``text`` (offsets into the NFKC form)."""
    norm = unicodedata.normalize("NFKC", text)
    return [(m.group().casefold(), m.start(), m.end()) for m in _WORD.finditer(norm)]


def possessive_stems(text: str, spans: list[tuple[str, int, int]] | None = None) -> list[str]:
    """Each word token of ``text`` as :func:`token_spans` gives it, except a lower-case
    word ending in "s" after three letters or more and followed by a content word, which
    is given without it: a possessive typed without its apostrophe ("merkels husband",
    "xi jinpings party"). Capitalised words keep their "s" ("Frances" is a name, not
    "France's"), and so does a last word ("how many apples"). ``spans``: the text's
    :func:`token_spans`, when the caller has them already."""
    norm = unicodedata.normalize("NFKC", text)
    spans = token_spans(norm) if spans is None else spans
    out = []
    for i, (token, start, end) in enumerate(spans):
        typed = norm[start:end]
        following = spans[i + 1][0] if i + 1 < len(spans) else None
        stem = (
            len(token) > 3
            and token.endswith("s")
            and not token.endswith("ss")
            and typed.islower()
            and following is not None  # a possessive comes before what it owns
            and following not in FUNCTION_WORDS  # "apples are", "tours in"
        )
        out.append(token[:-1] if stem else token)
    return out


def asking_sentence(text: str) -> str:
    """The sentence or line of ``text`` that asks: the last one ending with "?", else the
    last one; ``text`` itself when it has one sentence.

    ``"He was a poet. Edwin of Northumbria is a citizen of"`` → ``"Edwin of Northumbria is
    a citizen of"``; ``"I'm flying to Kenya. What is the capital of Kenya? It's for a
    trip."`` → ``"What is the capital of Kenya?"``: the sentences around a question dilute
    the whole query's embedding.
    """
    parts = [p for p in _SENTENCE_END.split(text.strip()) if p.strip()]
    if len(parts) <= 1:
        return text
    asking = [p for p in parts if p.rstrip().endswith("?")]
    return asking[-1] if asking else parts[-1]


# English words of two letters: a two-letter code spelled like one ("US": "us", "IT":
# "it") is the code only where it is typed as one (:func:`typed_as_acronym`).
TWO_LETTER_WORDS = frozenset(
    {"am", "an", "as", "at", "be", "by", "do", "go", "he", "hi", "if", "in", "is", "it"}
    | {"la", "me", "my", "no", "of", "oh", "ok", "on", "or", "so", "to", "up", "us", "we"}
)


def is_acronym(name: str) -> bool:
    """Whether ``name`` is a code that English text also spells as a word ("US", "IT"):
    it names an entity only where :func:`typed_as_acronym`. Other codes ("UK", "UN",
    "PAX", "U.S.") are matched as any name is, in any case ("whats the capital of uk")."""
    name = name.strip()
    return len(name) == 2 and name.isupper() and name.lower() in TWO_LETTER_WORDS


def typed_as_acronym(norm: str, spans: Sequence[tuple[str, int, int]], at: int, n: int) -> bool:
    """Whether tokens ``at .. at+n`` of ``norm`` are typed as a code: in capitals ("the
    US"), or lower-case after "the" ("what money do they use in the us"); "tell us" is
    not the US."""
    typed = norm[spans[at][1] : spans[at + n - 1][2]]
    return typed.isupper() or (at > 0 and spans[at - 1][0] == "the")


def _find(tokens: Sequence[str], name: Sequence[str], start: int = 0) -> int | None:
    """The first index from ``start`` where ``name`` occurs contiguously in ``tokens``."""
    n = len(name)
    if n == 0:
        return None
    for i in range(start, len(tokens) - n + 1):
        if tokens[i] == name[0] and list(tokens[i : i + n]) == list(name):
            return i
    return None


def _find_typed(
    norm: str, spans: Sequence[tuple[str, int, int]], tokens: Sequence[str], name: str
) -> int | None:
    """Where ``name`` occurs in ``tokens``, a code only where it is typed as one."""
    wanted = name_tokens(name)
    at = _find(tokens, wanted)
    if not is_acronym(name):
        return at
    while at is not None and not typed_as_acronym(norm, spans, at, len(wanted)):
        at = _find(tokens, wanted, at + 1)
    return at


@dataclass(frozen=True)
class Mention:
    """How a text names an entity.

    ``exact``: one of the names occurs whole. ``overlap``: the share of the best name's
    content words found in the text (1.0 when exact). ``extended``: the exact mention runs
    on into another capitalised word or number ("Windows" in "Windows 98"), so it probably
    names a different entity. ``masked``: the text with the mention (or, when partial,
    each run of the name's words) replaced by :data:`MASK`.
    """

    exact: bool
    overlap: float
    extended: bool
    masked: str
    start: int = -1  # where the exact mention starts and ends in the NFKC text (-1: none)
    end: int = -1

    @property
    def any(self) -> bool:
        return self.overlap > 0


def _capitalised(token_text: str) -> bool:
    return token_text[:1].isupper() or token_text[:1].isdigit()


def _extends(
    norm: str, spans: list[tuple[str, int, int]], at: int, n: int, *, dotted: bool = False
) -> bool:
    """Whether the mention at tokens ``at .. at+n`` runs on, across one space at most,
    into a capitalised word or a number ("Jill Ireland" for "Ireland"; a sentence's first
    word counts unless it is a function word: "In Ireland"), or is joined to one by "of"
    ("Louis I of Spain")."""
    last = at + n - 1
    if last + 1 < len(spans):
        _, start, end = spans[last + 1]
        gap = start - spans[last][2] - dotted  # "U.S. Route 30": the stop is the name's
        if gap <= 1 and _capitalised(norm[start:end]):
            return True
    if at > 1 and spans[at - 1][0] in NAME_JOINERS:  # "Luke of Prague", "Palace of Athens"
        _, start, end = spans[at - 2]
        if _capitalised(norm[start:end]) and not (at == 2 and spans[0][0] in FUNCTION_WORDS):
            return True
    if at > 0:
        word, start, end = spans[at - 1]
        # "In Paris", "What Paris" (a sentence's first word), "Where is The Netherlands"
        before = norm[:start].rstrip()
        first = not before or before[-1] in ".!?"
        function = (first and word in FUNCTION_WORDS) or word == "the"
        if spans[at][1] - end <= 1 and _capitalised(norm[start:end]) and not function:
            return True
    return False


def find_mention(text: str, names: Iterable[str]) -> Mention:
    """How ``text`` names any of ``names`` (a subject and its aliases)."""
    norm = unicodedata.normalize("NFKC", text)
    spans = token_spans(norm)
    tokens = [t for t, _, _ in spans]
    best: Mention = Mention(False, 0.0, False, norm)
    stems: list[str] | None = None
    # the longest name first: "Republic of Cuba" is a mention of itself, not one of "Cuba"
    # run on into "Republic of"
    for name in sorted(names, key=lambda n: -len(name_tokens(n))):
        wanted = name_tokens(name)
        at = _find_typed(norm, spans, tokens, name)
        if at is None and wanted and not is_acronym(name):
            stems = possessive_stems(norm, spans) if stems is None else stems
            typed = _find(stems, wanted)
            # only the name's last word may carry the dropped apostrophe
            if typed is not None and tokens[typed : typed + len(wanted) - 1] == wanted[:-1]:
                at = typed
        if at is not None:
            start, end = spans[at][1], spans[at + len(wanted) - 1][2]
            if name.endswith(".") and norm[end : end + 1] == ".":
                end += 1  # "U.K." with its last stop
            extended = _extends(
                norm, spans, at, len(wanted), dotted=end > spans[at + len(wanted) - 1][2]
            )
            return Mention(True, 1.0, extended, norm[:start] + MASK + norm[end:], start, end)
        if is_acronym(name):
            continue  # "us" is not a part of "US"
        content = {t for t in wanted if t not in STOP_WORDS}
        found = [i for i, t in enumerate(tokens) if t in content]
        overlap = len({tokens[i] for i in found}) / len(content) if content else 0.0
        if overlap > best.overlap:
            best = Mention(False, overlap, False, _mask_runs(norm, spans, set(found)))
    return best


def _mask_runs(norm: str, spans: list[tuple[str, int, int]], marked: set[int]) -> str:
    """``norm`` with each run of marked tokens (and the gaps between them) masked."""
    out, cursor, i = [], 0, 0
    while i < len(spans):
        if i not in marked:
            i += 1
            continue
        j = i
        while j + 1 < len(spans) and j + 1 in marked:
            j += 1
        out += [norm[cursor : spans[i][1]], MASK]
        cursor = spans[j][2]
        i = j + 1
    return "".join(out) + norm[cursor:]
