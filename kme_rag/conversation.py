"""Follow-up turns: the last question read with the conversation before it.

After "Tell me about the Sydney Opera House." a user asks "Which city is it in?"; after
"What is the capital of France?" they ask "And Kenya?". The scope step judges one
question, so a follow-up is first written out whole (:func:`resolve_followup`):

- a *pronoun* ("it", "its", "he", "her", "there") in a turn that names no edited subject
  is replaced by the edited subject the conversation named most recently — the user's
  earlier turns first, newest first, then the assistant's (the model's answers name
  other things in passing: "It is in Sydney, Australia");
- an *elliptical* turn ("And Kenya?", "What about Kenya?") is the previous user question
  with its subject replaced by the new one.

Only edited subjects are resolved to (those the fact graph knows): a conversation about
anything else has nothing the edits could change, and its turns pass through as typed.
The resolved question is what the scope step judges and what an in-context prompt asks;
the model still sees the whole conversation. It is shown in the answer's trace.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from kme_rag.backends import Message
from kme_rag.memory.aliases import subject_names
from kme_rag.memory.edit import Edit
from kme_rag.memory.mention import STOP_WORDS, find_mention

__all__ = ["resolve_followup"]

Mentioned = Callable[[str], list[Edit]]  # the edits whose subject a text names

_ELLIPSIS = re.compile(
    r"^\s*(?:(?:and|but|ok|okay|so)\s*,?\s*)?(?:what|how)\s+about\s+(?P<x>.+?)\s*[?.!]*\s*$"
    r"|^\s*(?:and|also)\s+(?:for\s+)?(?P<y>.+?)\s*\?+\s*$",
    re.IGNORECASE,
)
# Each pronoun and how the subject takes its place ("{}" is the subject).
_PRONOUNS = {
    "it": "{}",
    "its": "{}'s",
    "he": "{}",
    "him": "{}",
    "his": "{}'s",
    "she": "{}",
    "hers": "{}'s",
    "they": "{}",
    "them": "{}",
    "their": "{}'s",
    "there": "in {}",
}
_PRONOUN = re.compile(r"\b(" + "|".join(_PRONOUNS) + r"|her)\b", re.IGNORECASE)
_PREPOSITION_BEFORE = re.compile(r"\b(?:in|at|to|from|of|on|for|with|by|about)\s*$", re.I)
_CAPITALISED = re.compile(r"[A-Z][\w'.-]*(?:\s+(?:of|the|de|and|du|la|von)?\s*[A-Z][\w'.-]*)*")
_QUESTION_WORDS = frozenset(
    [
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "where",
        "when",
        "why",
        "how",
        "is",
        "are",
        "was",
        "were",
        "do",
        "does",
        "did",
        "can",
        "could",
        "tell",
        "name",
        "in",
        "the",
        "and",
    ]
)
HISTORY = 6  # how many earlier turns are read back for an antecedent


def _latest_subject(texts: Sequence[str], mentioned: Mentioned) -> str | None:
    """The edited subject named last in the newest of ``texts`` that names one."""
    for text in texts:
        best: tuple[int, str] | None = None
        for edit in mentioned(text):
            if edit.subject is None:
                continue
            mention = find_mention(text, subject_names(edit))
            place = mention.end if mention.exact else -1
            if best is None or place > best[0]:
                best = (place, edit.subject)
        if best is not None:
            return best[1]
    return None


def _replace_pronoun(question: str, subject: str) -> str | None:
    """``question`` with its antecedent pronoun replaced by ``subject``; None when it has
    none. "there" is taken first ("What do they speak there?" asks about the place, not
    "they"); "her" is a possessive before a content word ("her husband"), else an object."""
    matches = list(_PRONOUN.finditer(question))
    if not matches:
        return None
    there = [m for m in matches if m.group(1).lower() == "there"]
    match = there[0] if there else matches[0]
    word = match.group(1).lower()
    after = question[match.end() :].lstrip()
    if word == "her":
        following = re.match(r"[A-Za-z']+", after)
        possessive = following is not None and following.group().lower() not in STOP_WORDS
        form = "{}'s" if possessive else "{}"
    elif word == "there" and _PREPOSITION_BEFORE.search(question[: match.start()]):
        form = "{}"  # "in there"
    else:
        form = _PRONOUNS[word]
    return question[: match.start()] + form.format(subject) + question[match.end() :]


def _asked_subject(question: str, mentioned: Mentioned) -> str | None:
    """The subject ``question`` asks about: an edited one it names, else its last
    capitalised name ("What is the capital of France?" → "France")."""
    named = _latest_subject([question], mentioned)
    if named is not None:
        return named
    names = [
        m.group()
        for m in _CAPITALISED.finditer(question)
        if not (m.start() == 0 and m.group().split()[0].lower() in _QUESTION_WORDS)
    ]
    return names[-1].rstrip(".") if names else None


def resolve_followup(messages: Sequence[Message], mentioned: Mentioned) -> str | None:
    """The last user turn of ``messages`` written out whole, or None when it needs no
    resolving (it names an edited subject itself, has no pronoun or ellipsis, or the
    conversation names no edited subject to resolve to)."""
    if len(messages) < 2:
        return None
    question = messages[-1]["content"]
    earlier = list(messages[:-1])[-HISTORY:]
    users = [m["content"] for m in reversed(earlier) if m["role"] == "user"]
    others = [m["content"] for m in reversed(earlier) if m["role"] == "assistant"]
    ellipsis = _ELLIPSIS.match(question)
    if ellipsis is not None and users:
        new = (ellipsis.group("x") or ellipsis.group("y") or "").strip()
        old = _asked_subject(users[0], mentioned)
        if new and old and old in users[0] and mentioned(new):
            return users[0].replace(old, new, 1)
    if any(e.subject for e in mentioned(question)):
        return None
    subject = _latest_subject(users, mentioned) or _latest_subject(others, mentioned)
    return _replace_pronoun(question, subject) if subject else None
