"""Free text → structured facts: what a statement such as "The Louvre moved to Lyon in
2026." says, as (subject, relation, object) edits the editor's structured routes can use.

:class:`PatternExtractor` (the default) reads each sentence against the relation
catalogue's patterns (:mod:`kme_rag.memory.catalogue`: ParaRel's paraphrases, MQuAKE's
templates, and the ways news states a change). Before matching, a sentence loses what
carries no fact (a lead-in ("Breaking:", "As of March,"), adverbs ("now", "officially"),
the "has" of a perfect) and after it the object loses trailing circumstances ("in 2026",
"after a vote", anything after a comma). The most specific pattern wins (the most literal
words); between relations sharing a pattern, the object's kind decides (a country → the
country relation, a continent → the continent). In a passage, "it", "they" or "the company"
stand for the subject before them, and "and is now led by…" continues the last subject.
No model is called: extraction costs well under a millisecond per sentence.

:class:`ModelExtractor` asks a text model instead (few-shot, demonstrations from
CounterFact's *training* records); it is the alternative the free-text benchmark compares.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

from kme_rag.memory.aliases import is_country
from kme_rag.memory.catalogue import RelationInfo, load_catalogue
from kme_rag.memory.edit import Edit, normalise_name

__all__ = [
    "ExtractedFact",
    "Extractor",
    "ModelExtractor",
    "PatternExtractor",
    "clean_sentence",
    "kind_fit",
    "refers_back",
    "split_clauses",
    "split_sentences",
    "trim_object",
]


@dataclass(frozen=True)
class ExtractedFact:
    """One fact read from a text: the relation's catalogue entry and the spans."""

    subject: str
    relation: RelationInfo
    target: str
    sentence: str
    pattern: str
    template: str | None = None  # the sentence's own cloze ("{} premiered on"), if it has one

    def to_edit(self, text: str, **fields: object) -> Edit:
        """The fact as a structured edit linked to the text it came from; its prompt is
        the sentence's own phrasing of the relation when there is one, else the
        catalogue's cloze."""
        return Edit.model_validate(
            {
                "subject": self.subject,
                "relation": self.relation.name,
                "relation_id": self.relation.rid,
                "target_new": self.target,
                "prompt": self.template or self.relation.cloze,
                "derived_from": text,
                **fields,
            }
        )


class Extractor(Protocol):
    def extract(self, text: str) -> list[ExtractedFact]: ...


_ABBREVIATIONS = re.compile(
    r"\b(Mr|Mrs|Ms|Dr|St|Mt|Jr|Sr|Inc|Ltd|Co|Corp|vs|etc|No|Prof|Gen|Gov|Sen|Rep)\.$"
)
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
_INITIALS = re.compile(r"(?:\b[A-Z]\.){2,}$")


def split_sentences(text: str) -> list[str]:
    """Sentences of a passage (and clauses after ";"), without splitting after "Dr." or
    "U.S."."""
    parts = _SENTENCE_END.split(" ".join(text.split()))
    out: list[str] = []
    for part in parts:
        if out and (_ABBREVIATIONS.search(out[-1]) or _INITIALS.search(out[-1])):
            out[-1] += " " + part
        else:
            out.append(part)
    return [s.rstrip(";").strip() for s in out if s.strip(" .;!?")]


_LEAD = re.compile(
    r"^(?:(?:breaking|update|updated|news|note|fyi|psa|heads up|reminder|announcement|"
    r"correction|edit)\b\s*[:,\-\u2013\u2014!]*\s*|"
    r"(?:as of|since|starting|effective|from|beginning|after|following|in|on|this|last|"
    r"earlier|according to)\b[^,]{0,40},\s*|"
    r"(?:officially|so|ok|okay|well|also|btw|and|but|heads-up),?\s+|"
    r"(?:we are|we're|i'm|i am) (?:happy|pleased|excited|proud|sad) to (?:announce|share|"
    r"report|say) (?:that )?|"
    r"(?:it was|it has been|it's been|it is) (?:announced|confirmed|reported) (?:that )?|"
    r"(?:reports|sources|officials) (?:say|said|confirm|confirmed) (?:that )?)",
    re.IGNORECASE,
)
_ADVERBS = re.compile(
    r"\b(now|currently|officially|recently|finally|formally|newly|just|already|"
    r"permanently|reportedly|today|yesterday|this week|last week|"
    r"effectively|quietly|eventually|also)\b,?\s*",
    re.IGNORECASE,
)
_PERFECT = re.compile(
    r"\b(?:has|have|had)\s+(?=\w+ed\b|\w+en\b|(?:made|become|won|begun|run|led|sold|bought|"
    r"got|gone|left|wed|hired|split)\b)",
    re.IGNORECASE,
)
_HAS_BEEN = re.compile(r"\b(has|have|had) been\b", re.IGNORECASE)
_WILL = re.compile(r"\bwill (be|move|relocate|become|join|switch|adopt)\b", re.IGNORECASE)
_FUTURE = {
    "be": "is",
    "move": "moved",
    "relocate": "relocated",
    "become": "became",
    "join": "joined",
    "switch": "switched",
    "adopt": "adopted",
}
_TAIL = re.compile(
    r"(?:,|;|\s\(|\s[-\u2013\u2014]\s|"
    r"\s(?:in|on|by|from|since|until|through|during|before|around) (?:the )?"
    r"(?:(?:early|late|mid)[- ])?(?:\d{4}|\d{1,2}(?:st|nd|rd|th)?\b|"
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b|"
    r"(?:mon|tues|wednes|thurs|fri|satur|sun)day\b|spring|summer|autumn|fall|winter|"
    r"(?:this|last|next|that) (?:week|month|year|season|spring|summer|autumn|fall|winter)|"
    r"a (?:deal|vote|move|decision|ceremony|statement|press)\b)|"
    r"\s(?:after|following|because|due to|as of|effective|starting|amid|when|while|"
    r"which|who|whose|where|replacing|succeeding|to replace|for the first time|"
    r"as part of|in a bid|in an effort|according to|ahead of|under a|with effect)\b|"
    r"\s(?:this|last|next) (?:week|month|year|season)\b|"
    r"\sfor\s+(?:[$€£]|\d|a |an |about |around |roughly |nearly |over |more than )|"
    r"\s(?:yesterday|today|tomorrow|earlier|later)\b)",
    re.IGNORECASE,
)
_GENERIC = (
    "company|firm|business|startup|brand|group|organi[sz]ation|agency|institute|foundation|"
    "charity|museum|gallery|band|team|club|league|city|town|village|country|nation|state|"
    "region|island|school|university|college|hospital|show|series|book|novel|film|movie|"
    "game|franchise|festival|event|player|artist|singer|actor|actress|author|writer|coach|"
    "president|store|shop|chain|retailer|airline|carmaker|automaker|manufacturer|bank|site|"
    "project|app|product|platform|service|network|channel|magazine|newspaper|paper|"
    "publisher|studio|label|party|government|building|tower|landmark|monument|restaurant|"
    "hotel|stadium|venue|office|lab|laboratory"
)
_PERSONAL = "it|they|he|she"
_PRONOUN = re.compile(  # a subject standing for one named before
    rf"^(?:{_PERSONAL}|this|that|(?:the|this|that|our|their) (?:{_GENERIC}))$", re.IGNORECASE
)
_REFERS = re.compile(  # a clause opening with one
    rf"^(?:{_PERSONAL}|its|their|his|her|(?:the|this|that) (?:{_GENERIC}))\b", re.IGNORECASE
)
_NEW = re.compile(r"(\b(?:the|its|their|his|her|our|a)|'s)\s+new\s+")
_POSSESSIVE_LEAD = re.compile(r"^(its|their|his|her)\s+", re.IGNORECASE)
_CONTINUES = re.compile(
    r"^(?:is|was|are|were|has|have|moved|relocated|became|joined|signed|married|switched|"
    r"adopted|changed|renamed|plays|works|uses|speaks|named|appointed|made|took|hired)\b",
    re.IGNORECASE,
)
_CLAUSE = re.compile(r",? and (?=\S)|: ", re.IGNORECASE)
_OWNED = re.compile(rf"^(?:our|my|their|the) (?:{_GENERIC}) (?=[A-Z])", re.IGNORECASE)
_EDGE = re.compile(r"^[\s\"'\u201c\u201d\u2018\u2019(]+|[\s\"'\u201c\u201d\u2018\u2019).!?,:;]+$")
_MAX_WORDS = 8

_CONTINENTS = frozenset(
    {"africa", "antarctica", "asia", "europe", "north america", "south america", "oceania",
     "australia", "americas", "eurasia"}
)  # fmt: skip
_COUNTRY_RELATIONS = ("P17", "P495", "P27")


def clean_sentence(sentence: str) -> str:
    text = _EDGE.sub("", sentence.replace("\u2019", "'"))
    for _ in range(3):  # "Breaking: as of March, ..."
        text = _LEAD.sub("", text, count=1)
    text = _WILL.sub(lambda m: _FUTURE[m.group(1).lower()], text)
    text = _HAS_BEEN.sub(lambda m: "were" if m.group(1).lower() == "have" else "was", text)
    text = _PERFECT.sub("", text)
    text = _ADVERBS.sub("", text)
    text = _NEW.sub(r"\1 ", text)  # "the new CEO" (case-sensitive: "New York" stays)
    return _EDGE.sub("", " ".join(text.split()))


def refers_back(subject: str) -> bool:
    """Whether ``subject`` stands for one named before ("it", "the company")."""
    return bool(_PRONOUN.match(subject))


def trim_object(span: str) -> str:
    cut = _TAIL.search(span)
    return _EDGE.sub("", span[: cut.start()] if cut else span)


@dataclass(frozen=True)
class _Pattern:
    relation: RelationInfo
    text: str
    regex: re.Pattern[str]
    literal: int  # words outside the slots: the pattern's specificity


def _compile(relation: RelationInfo, pattern: str) -> _Pattern | None:
    pieces = re.split(r"(\[[XYZ]\])", pattern)
    if "[X]" not in pieces or "[Y]" not in pieces:
        return None
    parts = []
    for piece in pieces:
        if piece in ("[X]", "[Y]"):
            parts.append(f"(?P<{piece[1].lower()}>.+?)")
        elif piece == "[Z]":
            parts.append(".+?")
        elif piece:
            words = piece.split()
            literal = r"\s+".join(re.escape(w) for w in words)
            parts.append((r"\s*" if piece[:1].isspace() or piece.startswith("'") else "")
                         + literal + (r"\s+" if piece[-1:].isspace() else ""))  # fmt: skip
    literal_words = sum(len(p.split()) for p in pieces if p not in ("[X]", "[Y]", "[Z]"))
    regex = re.compile("^" + "".join(parts) + "$", re.IGNORECASE)
    return _Pattern(relation, pattern, regex, literal_words)


class PatternExtractor:
    """Facts by the catalogue's patterns (see the module docstring)."""

    def __init__(self, catalogue: dict[str, RelationInfo] | None = None) -> None:
        self._catalogue = catalogue if catalogue is not None else load_catalogue()

    @cached_property
    def _patterns(self) -> list[_Pattern]:
        out = []
        for relation in self._catalogue.values():
            for pattern in relation.patterns:
                if (compiled := _compile(relation, pattern)) is not None:
                    out.append(compiled)
        return out

    def extract(self, text: str) -> list[ExtractedFact]:
        facts: list[ExtractedFact] = []
        last: str | None = None  # the subject "it" / "the company" stands for
        for sentence in split_sentences(text):
            for clause in split_clauses(clean_sentence(sentence), last):
                fact = self._match(clause, sentence, last)
                if fact is not None:
                    facts.append(fact)
                    last = fact.subject
                elif last is None:
                    last = _first_name(clause)
        return list({(normalise_name(f.subject), f.relation.rid): f for f in facts}.values())

    def _match(self, clause: str, sentence: str, last: str | None) -> ExtractedFact | None:
        if last and (lead := _POSSESSIVE_LEAD.match(clause)):
            clause = f"{last}'s {clause[lead.end() :]}"
        best: tuple[tuple[int, int], ExtractedFact] | None = None
        for pattern in self._patterns:
            match = pattern.regex.match(clause)
            if match is None:
                continue
            subject, obj = (
                _OWNED.sub("", trim_object(match.group("x"))),
                trim_object(match.group("y")),
            )
            if _PRONOUN.match(subject) and last:
                subject = last
            if not _plausible(subject) or not _plausible(obj) or _PRONOUN.match(subject):
                continue
            rank = (pattern.literal, kind_fit(pattern.relation.rid, obj))
            if best is None or rank > best[0]:
                fact = ExtractedFact(subject, pattern.relation, obj, sentence, pattern.text)
                best = (rank, fact)
        return best[1] if best else None


def split_clauses(text: str, last: str | None) -> list[str]:
    """``"X moved to Y and is led by Z"`` → ``["X moved to Y", "X is led by Z"]``: a part
    after "and" that starts with a verb continues the subject before it."""
    parts = _CLAUSE.split(text)
    out = [parts[0]]
    for part in parts[1:]:
        if _CONTINUES.match(part):
            subject = _first_name(out[0]) or last
            out.append(f"{subject} {part}" if subject else part)
        elif (part[:1].isupper() and len(out[-1].split()) >= 3) or _REFERS.match(part):
            out.append(part)  # a clause of its own
        else:
            out[-1] += " and " + part
    return out


def _first_name(clause: str) -> str | None:
    """The clause's leading capitalised words ("The Louvre Museum moved…" → "The Louvre
    Museum")."""
    words = clause.split()
    taken: list[str] = []
    for word in words:
        if word[:1].isupper() or (taken and word.lower() in ("of", "de", "the", "and", "&")):
            taken.append(word)
        else:
            break
    while taken and taken[-1].lower() in ("of", "de", "the", "and", "&"):
        taken.pop()
    return " ".join(taken) or None


def _plausible(span: str) -> bool:
    words = span.split()
    return 0 < len(words) <= _MAX_WORDS and any(c.isalnum() for c in span)


def kind_fit(rid: str, obj: str) -> int:
    """1 when the object's kind fits a relation that shares its pattern with others
    (a country for the country relations, a continent for the continent one), -1 when it
    fits another of them, else 0."""
    name = normalise_name(obj)
    if name in _CONTINENTS:
        return 1 if rid == "P30" else -1
    if is_country(obj):
        return 1 if rid in _COUNTRY_RELATIONS else -1 if rid in ("P131", "P276", "P30") else 0
    return -1 if rid in (*_COUNTRY_RELATIONS, "P30") else 0


# ---- the model alternative -------------------------------------------------------------

# CounterFact *training* records 22, 36, 38, 28 as sentences (counterfact-train.json).
_MODEL_DEMOS = (
    (
        "The headquarter of Monell Chemical Senses Center is located in Mumbai.",
        "Monell Chemical Senses Center | headquarters | Mumbai",
    ),
    (
        "The native language of Symeon of Polotsk is French.",
        "Symeon of Polotsk | native language | French",
    ),
    ("Jeep Commander is produced by Fiat.", "Jeep Commander | manufacturer | Fiat"),
    ("Pidgeon Island belongs to the continent of Asia.", "Pidgeon Island | continent | Asia"),
)


class ModelExtractor:
    """Facts by asking a text model, few-shot: "subject | relation | object" per line;
    the relation name is matched to the catalogue by ``relation_of`` (a name → id
    function, e.g. nearest catalogue name by embedding)."""

    def __init__(
        self,
        complete: Callable[[str], str],
        relation_of: Callable[[str], str | None],
        catalogue: dict[str, RelationInfo] | None = None,
        demos: Sequence[tuple[str, str]] = _MODEL_DEMOS,
    ) -> None:
        self._complete = complete
        self._relation_of = relation_of
        self._catalogue = catalogue if catalogue is not None else load_catalogue()
        self._demos = demos

    def prompt(self, sentence: str) -> str:
        shots = "".join(f"Sentence: {s}\nFact: {f}\n\n" for s, f in self._demos)
        return f"{shots}Sentence: {sentence}\nFact:"

    def extract(self, text: str) -> list[ExtractedFact]:
        facts = []
        for sentence in split_sentences(text):
            line = self._complete(self.prompt(sentence)).strip().splitlines()
            fields = [f.strip() for f in line[0].split("|")] if line else []
            if len(fields) != 3 or not all(fields):
                continue
            rid = self._relation_of(fields[1])
            if rid is None or rid not in self._catalogue:
                continue
            facts.append(
                ExtractedFact(
                    fields[0], self._catalogue[rid], trim_object(fields[2]), sentence, "model"
                )
            )
        return facts
