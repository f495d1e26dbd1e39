"""Free text → facts by the scope classifier's relation understanding.

:class:`RelationExtractor` reads a sentence the way the scope classifier reads a
question. Every split of the sentence into a subject (a run of capitalised words, or the
words before the first verb) and an object (another name, or the last one to four words)
leaves a *masked statement*: "Gwen Stefani is a native speaker of French." split at
(Gwen Stefani, French) leaves "X is a native speaker of". The trained pair classifier
(:mod:`kme_rag.scope.classifier`, trained on ParaRel's paraphrases, CounterFact, zsRE and
MQuAKE phrasings) scores that text against every relation of the catalogue, each stated
several ways (its cloze, its question, its ParaRel patterns as clozes); the relation is
the one with the highest probability plus cosine, the object's kind breaking ties between
the location relations. The best split wins, less a little for long objects and for
objects that hold function words ("the sport football" loses to "football"). An object
before the subject is read only where the sentence says so ("Carlo Ancelotti is the head
coach of Chelsea", "French is X's mother tongue"). A split whose probability is under the
classifier's threshold is no fact, and the sentence is kept as a statement.

Unlike :class:`~kme_rag.memory.extract.PatternExtractor`, no phrasing has to be listed:
"X professionally plays the sport" is read as the sport relation although no pattern
says so. Cost: one embedding per split (a sentence has a handful), batched; the relation
texts are embedded once per process (~0.7 s).
"""

from __future__ import annotations

import functools
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from kme_rag.memory.catalogue import RelationInfo, load_catalogue
from kme_rag.memory.embedder import Embedder
from kme_rag.memory.extract import (
    ExtractedFact,
    clean_sentence,
    kind_fit,
    refers_back,
    split_clauses,
    split_sentences,
)
from kme_rag.memory.lexicon import common_words
from kme_rag.memory.mention import MASK, find_mention
from kme_rag.scope.features import PairMention, pair_features
from kme_rag.scope.mlp import ScopeWeights

__all__ = ["RelationExtractor", "relation_texts", "statement_names", "text_extractor"]

_WORD = re.compile(r"\w[\w'\u2019.&-]*")
_JOINERS = frozenset({"of", "the", "de", "and", "&", "du", "la", "le", "von", "van", "der",
                      "del", "da", "di"})  # fmt: skip
_PRONOUNS = frozenset({"they", "it", "he", "she", "we", "i", "you", "our", "my", "their",
                       "his", "her", "its", "this", "that", "these", "those"})  # fmt: skip
_OPENERS = frozenset({"in", "a", "an", "what", "which", "who", "where", "when", "on", "at",
                      "as", "after", "from", "with"})  # fmt: skip
_FUNCTION = frozenset({"the", "a", "an", "of", "in", "to", "by", "as", "from", "with", "for",
                       "at", "on", "is", "are", "was", "were", "and"}) | _PRONOUNS  # fmt: skip
_VERB = re.compile(
    r"\s(?:is|was|are|were|has|have|had|will|premiered|premieres|debuted|debuts|plays|"
    r"played|originated|speaks|spoke|works|worked|moved|relocated|became|joined|signed|"
    r"died|lives|lived)\b"
)
# An object before its subject is read in these forms only: "Y is the head coach of X",
# "Y is X's mother tongue".
_COPULA_OF = re.compile(
    rf"^(?:is|was|are|were|became|has become|will be)\s+(?:the|a|an)\s+.*\b(?:of|for|at)"
    rf"\s+{MASK}$"
)
# "X is the head coach of" read as (X, head coach, …) reverses the relation "The head coach
# of X is": the subject is the one after "of".
_SUBJECT_FIRST_OF = re.compile(
    rf"^{MASK} (?:is|was|are|were|became|has become|will be) the (.+) of$"
)
_OBJECT_FIRST_OF = re.compile(
    rf"^(?:is|was|are|were|became|has become|will be) the (.+) of {MASK}$"
)
_REVERSED = 0.3
_PLACE_LEAD = re.compile(r"^(?:In|At) ([A-Z][^,]{0,40}),\s*")
_TIME = re.compile(
    r"\d|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b|day\b|"
    r"\b(?:spring|summer|autumn|fall|winter|week|month|year)\b",
    re.IGNORECASE,
)
# Relations whose objects are common nouns ("actor", "violin", "midfielder"): over half
# of their T-REx objects are lower case (P101 0.96, P106 1.0, P1303 1.0, P136 1.0, P279
# 0.95, P31 0.99, P361 0.64, P39 0.98, P413 1.0, P527 0.84), plus currency and sport,
# which T-REx does not hold ("euro", "football"). An object in lower case names a thing
# only for these; "The weather was lovely" states no location.
_COMMON_NOUN_OBJECTS = frozenset(
    {"P101", "P106", "P1303", "P136", "P279", "P31", "P361", "P39", "P413", "P527", "P38",
     "P641"}
)  # fmt: skip
_TRAILING = re.compile(
    r"(?:,?\s(?:in|on|by|since|from|until|during|before|after|earlier|later|this|last|"
    r"next)\s(?:the\s)?(?:(?:early|late|mid)[- ])?(?:\d{4}|\d{1,2}(?:st|nd|rd|th)?|"
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*(?:\s\d{4})?|"
    r"(?:mon|tues|wednes|thurs|fri|satur|sun)day|spring|summer|autumn|fall|winter|"
    r"week|month|year|season)|,?\s(?:yesterday|today|tomorrow|overnight|"
    r"effective immediately|with immediate effect))$",
    re.IGNORECASE,
)
_MAX_OBJECT_WORDS = 4
_LONG = 0.05  # rank lost per object word
_FUNCTION_WORD = 0.1  # rank lost per function word in an object that is not a name


def relation_texts(relation: RelationInfo) -> list[str]:
    """``relation`` stated as masked texts the classifier compares: its cloze, its
    question, and its patterns that end at the object (as clozes) or open with "[Y] is"
    (as "What is …?")."""
    out = [relation.cloze.format(MASK), relation.question.format(MASK)]
    for pattern in relation.patterns:
        if "[X]" not in pattern or "[Z]" in pattern:
            continue
        if pattern.endswith("[Y]"):
            out.append(pattern.removesuffix("[Y]").rstrip().replace("[X]", MASK))
        elif pattern.startswith("[Y] is "):
            out.append("What is " + pattern.removeprefix("[Y] is ").replace("[X]", MASK) + "?")
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class _Split:
    subject: str
    target: str
    masked: str
    named_object: bool
    template: str | None = None  # "{} premiered on": the clause up to an object that ends it


class RelationExtractor:
    """Facts read by the trained scope classifier (see the module docstring)."""

    def __init__(
        self,
        embedder: Embedder,
        weights: ScopeWeights | None = None,
        catalogue: dict[str, RelationInfo] | None = None,
        *,
        threshold: float | None = None,
    ) -> None:
        self.embedder = embedder
        self.weights = weights or ScopeWeights.load()
        self.threshold = self.weights.threshold if threshold is None else threshold
        self._relations = list((catalogue or load_catalogue()).values())

    @cached_property
    def _texts(self) -> list[list[str]]:
        return [relation_texts(r) for r in self._relations]

    def _names_relation(self, k: int, target: str) -> bool:
        """Whether ``target`` opens with a word of relation ``k``'s own texts and goes on
        ("instrument trumpet" for the instrument relation)."""
        words = target.casefold().split()
        if len(words) < 2:
            return False
        return any(words[0] in t.casefold().split() for t in self._texts[k])

    def _of_subject(self, k: int, noun: str) -> bool:
        """Whether relation ``k`` is stated "… {noun} of X" (the subject after "of")."""
        wanted = f"{noun.casefold()} of {MASK.casefold()}"
        return any(wanted in t.casefold() for t in self._texts[k])

    @cached_property
    def _common_noun(self) -> np.ndarray:
        return np.array([r.rid in _COMMON_NOUN_OBJECTS for r in self._relations])

    @cached_property
    def _bank(self) -> tuple[np.ndarray, np.ndarray]:
        """(texts, dim) relation-text embeddings and (texts,) the relation of each."""
        texts = [(i, t) for i, r in enumerate(self._relations) for t in self._texts[i]]
        vectors = self.embedder.embed([t for _, t in texts])
        return vectors, np.array([i for i, _ in texts])

    def extract(self, text: str) -> list[ExtractedFact]:
        facts: list[ExtractedFact] = []
        last: str | None = None
        for sentence in _question_answers(split_sentences(text)):
            for clause in split_clauses(_clean(sentence), last):
                fact = self._read(clause, sentence, last)
                if fact is not None:
                    facts.append(fact)
                    last = fact.subject
        return list({(f.subject.casefold(), f.relation.rid): f for f in facts}.values())

    def _read(self, clause: str, sentence: str, last: str | None) -> ExtractedFact | None:
        splits = _splits(_resolved(clause, last))
        if not splits:
            return None
        queries = self.embedder.embed([s.masked for s in splits])  # (splits, dim)
        scored = [
            (score, split)
            for split, query in zip(splits, queries, strict=True)
            if (score := self._score(split, query)) is not None
        ]
        if not scored:
            return None
        (_, probability, cosine, k), split = max(scored, key=lambda pair: pair[0][0])
        if probability < self.threshold:
            return None
        return ExtractedFact(
            split.subject,
            self._relations[k],
            split.target,
            sentence,
            f"classifier p={probability:.3f} cos={cosine:.3f}",
            split.template,
        )

    def _score(self, split: _Split, query: np.ndarray) -> tuple[float, float, float, int] | None:
        """(rank, probability, cosine, relation index) of ``split``'s best relation, or
        None when no relation may take its object (a lower-case object of a relation whose
        objects are names)."""
        bank, owner = self._bank
        cosine = bank @ query  # (texts,)
        mention = find_mention(split.masked.replace(MASK, split.subject, 1), [split.subject])
        pair = PairMention(mention, False, 1.0 / max(1, len(split.subject.split())))
        n = len(bank)
        numeric = bool(re.search(r"\b\d{3,4}\b", split.target))
        x = pair_features(
            np.repeat(query[None], n, axis=0), bank, [pair] * n, cosine, [numeric] * n
        )
        probability = np.zeros(len(self._relations))  # (relations,): the best of its texts
        np.maximum.at(probability, owner, self.weights.probability(x))
        closest = np.full(len(self._relations), -1.0)
        np.maximum.at(closest, owner, cosine)
        fit = np.array([kind_fit(r.rid, split.target) for r in self._relations])
        combined = probability + closest + 0.1 * fit
        if not any(c.isupper() for c in split.target):
            combined[~self._common_noun] = -np.inf
            if not np.isfinite(combined).any():
                return None
        k = int(np.argmax(combined))
        words = split.target.casefold().split()
        extra = 0 if split.named_object else sum(w in _FUNCTION for w in words)
        rank = float(combined[k]) - _LONG * len(words) - _FUNCTION_WORD * extra
        if not split.named_object and self._names_relation(k, split.target):
            rank -= _REVERSED  # "the instrument trumpet": the relation's word, then the object
        if (of := _SUBJECT_FIRST_OF.match(split.masked)) and self._of_subject(k, of[1]):
            rank -= _REVERSED
        elif (of := _OBJECT_FIRST_OF.match(split.masked)) and self._of_subject(k, of[1]):
            rank += _REVERSED
        return rank, float(probability[k]), float(closest[k]), k


def _resolved(clause: str, last: str | None) -> str:
    """``clause`` with a leading "it" or "the company" replaced by ``last``, the subject
    of the fact before it."""
    words = clause.split()
    if last and words and refers_back(" ".join(words[:2])):
        return f"{last} {' '.join(words[2:])}"
    if last and words and refers_back(words[0]):
        return f"{last} {' '.join(words[1:])}"
    return clause


def _question_answers(sentences: Sequence[str]) -> list[str]:
    """A question and the answer after it as one sentence ("What is the twin city of
    Lyon? It is Manila.")."""
    out: list[str] = []
    for sentence in sentences:
        if out and out[-1].endswith("?"):
            out[-1] = f"{out[-1][:-1]}, {sentence}"
        else:
            out.append(sentence)
    return out


def _clean(sentence: str) -> str:
    """:func:`clean_sentence`, keeping a place it opens with ("In Colombia, they speak
    Spanish": the subject is the place)."""
    lead = _PLACE_LEAD.match(sentence)
    if lead and not _TIME.search(lead.group(1)):
        return f"{lead.group(0)}{clean_sentence(sentence[lead.end() :])}".rstrip(" .")
    return clean_sentence(sentence).rstrip(" .")


def _names(clause: str) -> list[tuple[int, int]]:
    """Spans of capitalised word runs (joined by "of", "de"…; a leading "The" dropped, a
    run ended by a possessive), pronouns and a sentence-opening "In" or "What" left out."""
    words = list(_WORD.finditer(clause))
    spans: list[tuple[int, int]] = []
    run: list[re.Match[str]] = []

    def close() -> None:
        while run and run[-1].group().casefold() in _JOINERS:
            run.pop()
        if len(run) > 1 and run[0].group().casefold() == "the":
            run.pop(0)
        if run:
            end = run[-1].end()
            if clause[end - 2 : end] in ("'s", "\u2019s"):
                end -= 2
            spans.append((run[0].start(), end))
        run.clear()

    for i, word in enumerate(words):
        token = word.group()
        low = token.casefold()
        if run and clause[run[-1].end() : word.start()].strip():  # "Kansas City, Missouri"
            close()
        named = (
            (token[:1].isupper() or token[:1].isdigit() or any(c.isupper() for c in token[1:2]))
            and low not in _PRONOUNS
            and not (i == 0 and low in _OPENERS)
        )
        if named or (run and low in _JOINERS):
            run.append(word)
        else:
            close()
        if run and token.endswith(("'s", "\u2019s")):
            close()
    close()
    return spans


def _lead(clause: str) -> list[tuple[int, int]]:
    """The words before the first verb, as a subject ("Lost in Space premiered on HBO")."""
    words = clause.split()
    if not words or not clause[:1].isupper() or words[0].casefold() in _OPENERS | _PRONOUNS:
        return []
    verb = _VERB.search(clause)
    head = clause[: verb.start()] if verb else ""
    while head.split() and head.split()[-1].endswith("ly") and head.split()[-1].islower():
        head = head[: head.rstrip().rfind(" ")].rstrip()  # "Hank Aaron professionally plays"
    if verb and 1 < len(head.split()) <= 7 and "," not in head:
        start = 4 if head.startswith("The ") else 0
        return [(start, len(head))]
    return []


def _tails(clause: str, names: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The last one to four words, not starting with a function word or inside a name."""
    words = list(_WORD.finditer(clause))
    out = []
    for k in range(1, min(_MAX_OBJECT_WORDS, len(words) - 1) + 1):
        first = words[-k]
        if first.group().casefold() in _FUNCTION:
            continue
        if any(a < first.start() < b for a, b in names):
            continue
        out.append((first.start(), words[-1].end()))
    return out


def _named(span: str, at_start: bool) -> bool:
    """Whether ``span`` can name a subject: not a common word capitalised only because
    the clause opens with it ("Shares", "The weather"), not a bare number."""
    words = span.split()
    if not any(c.isalpha() for c in span):
        return False
    if words[0].casefold() == "the":
        words = words[1:]
    if not words:
        return False
    if at_start and len(words) == 1:
        return words[0].casefold() not in common_words() or not words[0][1:].islower()
    return any(w[:1].isupper() for w in words)


def _object(span: str) -> bool:
    return any(c.isalpha() for c in span)


def _parts(spans: Sequence[tuple[int, int]], clause: str) -> list[tuple[int, int]]:
    """Each span and, for one joined by " of ", its two sides ("CEO of Brightloop")."""
    out = list(spans)
    for a, b in spans:
        at = clause.find(" of ", a, b)
        if at > a:
            out += [(a, at), (at + 4, b)]
    return out


def _splits(clause: str) -> list[_Split]:
    """Every (subject, object) split of ``clause`` worth scoring."""
    while (trailing := _TRAILING.search(clause)) is not None and trailing.start() > 0:
        clause = clause[: trailing.start()]
    names = _parts(_names(clause), clause)
    objects = list(dict.fromkeys([*names, *_tails(clause, names)]))
    subjects = list(dict.fromkeys([*names, *_lead(clause)]))
    out = []
    for a, b in subjects:
        for c, d in objects:
            if not (b <= c or d <= a):
                continue
            template = None
            if c >= b:  # the object after the subject: the text up to the object
                masked = clause[:a] + MASK + clause[b:c]
                cloze = (clause[:a] + "{}" + clause[b:c]).rstrip(" ,")
                ends = not clause[d:].strip(" .,;:!?")
                if ends and cloze != "{}" and "{" not in clause and "}" not in clause:
                    template = cloze
            else:
                masked = clause[:c] + clause[d:a] + MASK + clause[b:]
            masked = " ".join(masked.split()).strip(" ,")
            if c < b and f"{MASK}'s" not in masked and not _COPULA_OF.match(masked):
                continue
            subject, target = clause[a:b].strip(" ,"), clause[c:d].strip(" ,")
            if not subject or not _named(subject, a == 0) or not _object(target):
                continue
            if subject.casefold() != target.casefold():
                out.append(_Split(subject, target, masked, (c, d) in names, template))
    return out


_READERS: weakref.WeakKeyDictionary[Embedder, RelationExtractor] = weakref.WeakKeyDictionary()


def text_extractor(embedder: Embedder) -> RelationExtractor:
    """One reader per embedder (its relation texts are embedded once)."""
    reader = _READERS.get(embedder)
    if reader is None:
        reader = _READERS[embedder] = RelationExtractor(embedder)
    return reader


@functools.lru_cache(maxsize=4096)
def statement_names(statement: str) -> tuple[str, ...]:
    """The names a free-text statement speaks of: its capitalised word runs that can name
    a subject (not a common word capitalised by the sentence start, not a number), in
    order ("The Louvre moved to Lyon in 2026." → ("Louvre", "Lyon"))."""
    found: list[str] = []
    for sentence in split_sentences(statement):
        clause = _clean(sentence)
        for a, b in _names(clause):
            name = clause[a:b].strip(" ,")
            if name and _named(name, a == 0) and name not in found:
                found.append(name)
    return tuple(found)
