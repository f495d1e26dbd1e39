"""Questions labelled by Wikidata relation, from MQuAKE's training scope pairs.

Each record of ``mquake/scope-pairs-cls-filtered.json`` is an edit written with one of
MQuAKE's cloze templates (``prompts/cloze_templates.json``: "The author of [X] is __",
keyed by Wikidata id) and four questions asking it in different words ("Who wrote the
novel X?", "What is the name of the author who wrote X?"). Matching the statement to its
template gives every question a relation id, so the questions become a bank of phrasings
per relation: 37 relations, about 700 phrasings asked at least twice.

With the id known, a question of *another* relation of the same subject is a negative by
identity, not by how unlike its words are. That matters for the hard cases: "Who is the
director of X?" is 0.75 cosine from "Who is the author of X?" (masked), above the
:data:`~kme_rag.scope.data.SIMILAR` cut that keeps unlabelled phrasings out of the
negatives, so without ids no work's edit ever learnt that a question about another person
of the same work is not about its author.

Relations people ask in the same words are *linked* and never each other's negatives:
those sharing a phrasing in the bank ("Who is the head of X?" is asked of chairpersons
and chief executives) and :data:`LINKED`, the pairs whose questions overlap in meaning.
Records whose edit an evaluation file holds are left out, as in
:func:`~kme_rag.scope.data.mquake_pairs`.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kme_rag.memory.edit import normalise_name
from kme_rag.scope.forms import SURFACE_FORMS, surface

__all__ = ["LINKED", "QuestionBank", "wh_word"]

# Relations whose questions overlap in meaning (Wikidata ids; ParaRel's and MQuAKE's).
LINKED: tuple[frozenset[str], ...] = tuple(
    frozenset(ids)
    for ids in (
        {"P17", "P30", "P131", "P276", "P159"},  # where a thing is: country, continent, place
        {"P17", "P27", "P495"},  # "which country is X from?"
        {"P50", "P170", "P112", "P178", "P176"},  # who made it: author, creator, founder, maker
        {"P407", "P364", "P37", "P103", "P1412"},  # which language
        {"P35", "P6", "P1308", "P488", "P169", "P1037", "P286", "P39"},  # who leads it
        {"P106", "P101", "P108", "P937"},  # what X does and where: occupation, employer
        {"P361", "P463"},  # part of, member of
    )
)
_WH = re.compile(r"^(?:\w+ )?(who|whom|what|which|where|when|how)\b", re.I)


def wh_word(question: str) -> str:
    """The question's wh-word ("In which city ..." → "which"), else ""."""
    match = _WH.match(question.strip())
    return match.group(1).lower() if match else ""


@dataclass
class QuestionBank:
    """Question phrasings ("{}" for the subject) per Wikidata relation id."""

    by_id: dict[str, list[str]]
    links: dict[str, set[str]] = field(default_factory=dict)
    patterns: list[tuple[str, re.Pattern[str]]] = field(default_factory=list)
    _others: dict[tuple[str, frozenset[str]], list[str]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        records: Sequence[dict[str, Any]],
        clozes: dict[str, str],
        held_out: set[str],
        least: int = 2,
    ) -> QuestionBank:
        """The bank from scope-pair ``records``: each statement matched to the longest
        cloze template it fills, its questions' phrasings (the subject replaced by "{}")
        kept when asked at least ``least`` times for that relation."""
        patterns = sorted(
            ((rid, _pattern(text)) for rid, text in clozes.items()),
            key=lambda item: -len(clozes[item[0]]),
        )
        counts: dict[str, Counter[str]] = {}
        for record in records:
            if normalise_name(record["edit"]) in held_out:
                continue
            found = relation_of(record["edit"], patterns)
            if found is None:
                continue
            rid, subject = found
            asked = {q.replace(subject, "{}", 1) for q in record["questions"] if subject in q}
            counts.setdefault(rid, Counter()).update(asked)
        by_id = {
            rid: sorted(t for t, n in c.items() if n >= least) for rid, c in sorted(counts.items())
        }
        return cls({rid: ts for rid, ts in by_id.items() if ts}, _links(by_id), patterns)

    @classmethod
    def load(cls, data_dir: Path, held_out: set[str]) -> QuestionBank | None:
        """The bank from the files under ``data_dir``; None when they are absent."""
        mq = data_dir / "mquake"
        pairs = mq / "scope-pairs-cls-filtered.json"
        clozes = mq / "prompts" / "cloze_templates.json"
        if not (pairs.is_file() and clozes.is_file()):
            return None
        return cls.build(json.loads(pairs.read_text()), json.loads(clozes.read_text()), held_out)

    def relation(self, statement: str) -> str | None:
        """The relation id of the cloze template ``statement`` fills, if any."""
        found = relation_of(statement, self.patterns)
        return found[0] if found else None

    def negatives(
        self,
        rid: str,
        subject: str,
        own: Sequence[str],
        rng: random.Random,
        also_linked: Iterable[str] = (),
    ) -> list[str]:
        """``subject`` asked two other relations' questions, each in a random form of
        :data:`~kme_rag.scope.forms.SURFACE_FORMS`: one with the wh-word ``own`` (the
        edit's own questions) mostly use ("Who directed X?" against an author's edit),
        when there is one, and one of any kind."""
        pool = self.others(rid, also_linked)
        if not pool:
            return []
        words = Counter(w for q in own if (w := wh_word(q)))
        same = [t for t in pool if words and wh_word(t) == words.most_common(1)[0][0]]
        picked = [rng.choice(same)] if same else []
        picked.append(rng.choice(pool))
        return [
            surface(t.replace("{}", subject, 1), subject, rng.choice(SURFACE_FORMS), rng)
            for t in picked
        ]

    def linked(self, rid: str) -> set[str]:
        """``rid`` and every relation linked to it."""
        return {rid, *self.links.get(rid, ())}

    def others(self, rid: str, also_linked: Iterable[str] = ()) -> list[str]:
        """Phrasings of relations neither ``rid`` nor linked to it (nor to any of
        ``also_linked``: ParaRel's own links)."""
        near = frozenset(self.linked(rid).union(*(self.linked(r) for r in also_linked)))
        key = (rid, near)
        if key not in self._others:
            own = set(self.by_id.get(rid, ()))
            self._others[key] = [
                t
                for other, templates in self.by_id.items()
                if other not in near
                for t in templates
                if t not in own
            ]
        return self._others[key]


def _pattern(cloze: str) -> re.Pattern[str]:
    body = re.escape(cloze).replace(re.escape("[X]"), "(?P<subject>.+?)")
    return re.compile("^" + body.replace("__", ".+") + "$")


def relation_of(
    statement: str, patterns: Sequence[tuple[str, re.Pattern[str]]]
) -> tuple[str, str] | None:
    """(relation id, subject) of the first pattern ``statement`` fills."""
    for rid, pattern in patterns:
        match = pattern.match(statement)
        if match:
            return rid, match.group("subject")
    return None


def _links(by_id: dict[str, list[str]]) -> dict[str, set[str]]:
    """:data:`LINKED` plus relations sharing a phrasing in the bank."""
    links: dict[str, set[str]] = {}
    groups: list[set[str]] = [set(ids) for ids in LINKED]
    by_text: dict[str, set[str]] = {}
    for rid, templates in by_id.items():
        for template in templates:
            by_text.setdefault(" ".join(re.findall(r"\w+", template.lower())), set()).add(rid)
    groups += [rids for rids in by_text.values() if len(rids) > 1]
    for rids in groups:
        for rid in rids:
            links.setdefault(rid, set()).update(rids - {rid})
    return links
