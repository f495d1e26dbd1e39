"""How people type a question: casual, with a typo, in a chat framing, inside a message.

:func:`surface` turns a well-formed question about a subject into one of these forms; the
scope classifier's training pairs (:mod:`~kme_rag.scope.pararel`,
:mod:`~kme_rag.scope.wikidata`) are asked in them so that it learns the relation, not
the typing.
"""

from __future__ import annotations

import random
import re

from kme_rag.memory.edit import normalise_name

__all__ = ["SURFACE_FORMS", "surface"]

SURFACE_FORMS = ("question", "casual", "typo", "chat", "embedded")
CHAT_OPENERS = (
    "Quick question: {}",
    "Hey, {}",
    "Can you help me? {}",
    "I was wondering, {}",
    "{} Thanks!",
    "Please answer briefly. {}",
    "{} I need it for a quiz.",
    "Do you know this? {}",
)
PREAMBLES = (
    "My friend and I were talking about this yesterday.",
    "I'm writing a short report for school.",
    "This came up in a trivia night and nobody was sure.",
    "I read something online and now I'm confused.",
    "We are planning a trip next month.",
    "Sorry if this is a silly question.",
)
CODAS = (
    "I'd like a short answer.",
    "Thanks in advance.",
    "It's for a crossword.",
    "Just the name is fine.",
    "",
)


def casual(text: str) -> str:
    """Typed quickly: lower case, no final punctuation, "what is" → "whats", no
    possessive apostrophes."""
    out = text.lower().rstrip("?.! ")
    out = out.replace("what is ", "whats ").replace("'s ", "s ")
    return out


def typo(text: str, subject: str, rng: random.Random) -> str:
    """One letter dropped or two swapped in a word of four letters or more that is not
    part of the subject."""
    spans = [
        m
        for m in re.finditer(r"[A-Za-z]{4,}", text)
        if m.group().casefold() not in normalise_name(subject).split()
    ]
    if not spans:
        return text
    word = rng.choice(spans)
    i = rng.randrange(1, len(word.group()) - 1)
    letters = list(word.group())
    if rng.random() < 0.5:
        del letters[i]
    else:
        letters[i - 1], letters[i] = letters[i], letters[i - 1]
    return text[: word.start()] + "".join(letters) + text[word.end() :]


def surface(text: str, subject: str, form: str, rng: random.Random) -> str:
    """``text`` (a question about ``subject``) as typed in ``form``: casual, with a typo,
    in a chat framing, embedded in a longer message, or as it is."""
    if form == "casual":
        return casual(text)
    if form == "typo":
        return typo(text, subject, rng)
    if form == "chat":
        return rng.choice(CHAT_OPENERS).format(text)
    if form == "embedded":
        return " ".join(p for p in (rng.choice(PREAMBLES), text, rng.choice(CODAS)) if p)
    return text
