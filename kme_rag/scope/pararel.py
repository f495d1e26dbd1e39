"""Training pairs from ParaRel: crowd-verified paraphrases of 39 relations, asked many ways.

CounterFact's templates teach the classifier one phrasing per relation, mostly clozes. A
user asks "whats the capital of france", "France's capital is what?", or a question inside
a longer message. This module turns ParaRel's patterns (``pararel/patterns/P*.jsonl``:
"[X]'s capital is [Y].", "[Y] is the capital city of [X].") and T-REx subjects
(``pararel/trex/P*.jsonl``) into pairs in many *forms* (:data:`FORMS`): the cloze, a
wh-question, an echo question ("France's capital is what?"), casual lower-case typing
without punctuation, a typo, a chat framing and a question embedded in a longer message.
MQuAKE's question template of the same Wikidata id ("Which country is [X] located in?")
joins each relation's phrasings.

Each T-REx subject becomes an edit of its relation — written as users write edits: a
ParaRel cloze or the relation's name ("capital") — and is asked

- its own relation in two forms (in scope), and
- *another relation of the same subject* in two forms (out of scope): the negative that
  decides same-subject locality, here a first-class part of the data rather than a
  by-product of templates;
- a question of another relation from the zsRE/MQuAKE training questions unlike its own
  (dates, people, numbers ParaRel lacks), and its own relation's words asking a date
  instead ("When was X born?" against "X was born in": :func:`quantity_question`).

Relations sharing a phrasing ("[X] is located in [Y]" is P17, P131, P276 and P30) are
*linked* and never each other's negatives. Subjects that any evaluation set names are
dropped (:func:`evaluation_subjects`), so no evaluation edit's subject is trained on.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from kme_rag.errors import ConfigurationError
from kme_rag.memory.edit import Edit, normalise_name, parse_edit
from kme_rag.scope.data import MQUAKE_EVAL_FILES, Pair
from kme_rag.scope.forms import surface
from kme_rag.scope.wikidata import QuestionBank

__all__ = [
    "FORMS",
    "ParaRelRelation",
    "evaluation_subjects",
    "load_relations",
    "pararel_pairs",
    "phrase",
]

_SLOT_X, _SLOT_Y = "[X]", "[Y]"
_COPULA_END = re.compile(r"^(.*\S)\s+(is|was|are|were)$")
_Y_FIRST = re.compile(r"^\[Y\],?\s+(?:(is|was|are|were)\s+)?(.*)$")
_SPACE = re.compile(r"\s+")
_RELATIVE = re.compile(r"^(?:that|which|who)\s+")
_COPULA_START = re.compile(r"^(is|was|are|were)\s+(.*)$")
_ARTICLE = re.compile(r"^(?:the|a|an)\s")
FORMS = ("cloze", "question", "echo", "casual", "typo", "chat", "embedded")


@dataclass(frozen=True)
class ParaRelRelation:
    """One relation: its id, name (from the pattern lemma) and phrasings with ``{}``
    for the subject and no object (clozes end where the object would go)."""

    rid: str
    name: str
    patterns: tuple[str, ...]  # ParaRel's, "[X]"/"[Y]" slots
    questions: tuple[str, ...] = ()  # MQuAKE's wh-question of the same id, "{}" slot

    @cached_property
    def wh_questions(self) -> list[str]:
        """The patterns as wh-questions (:func:`_question`), in pattern order."""
        return [q for p in self.patterns if (q := _question(p))]

    @cached_property
    def where_questions(self) -> list[str]:
        """The place patterns as where-questions (:func:`_where`), in pattern order."""
        return [w for p in self.patterns for w in _where(p)]

    def clozes(self) -> list[str]:
        """Patterns ending with the object, cut there: "The capital of {} is"."""
        out = []
        for pattern in self.patterns:
            text = _tidy(pattern)
            if text.endswith(_SLOT_Y) and _SLOT_X in text:
                out.append(text[: -len(_SLOT_Y)].rstrip().replace(_SLOT_X, "{}"))
        return out


def _tidy(pattern: str) -> str:
    """Without trailing punctuation and the space ParaRel puts before it."""
    return _SPACE.sub(" ", pattern).strip().rstrip(".").rstrip()


def _question(pattern: str) -> str | None:
    """A wh-question asking the pattern's object: "The capital of [X] is [Y]" → "What is
    the capital of {}?"; "[Y] is the capital city of [X]" → "What is the capital city of
    {}?"; None when the pattern has no such shape."""
    text = _tidy(pattern)
    if text.endswith(_SLOT_Y):
        head = text[: -len(_SLOT_Y)].rstrip()
        match = _COPULA_END.match(head)
        if match and _SLOT_X in match.group(1):
            body = match.group(1)
            body = body[0].lower() + body[1:] if body.startswith("The ") else body
            return f"What {match.group(2)} {body}?".replace(_SLOT_X, "{}")
        return None
    match = _Y_FIRST.match(text)
    if match and _SLOT_X in match.group(2) and _SLOT_Y not in match.group(2):
        verb, rest = match.group(1), _RELATIVE.sub("", match.group(2))
        if verb is None and (copula := _COPULA_START.match(rest)):
            verb, rest = copula.group(1), copula.group(2)  # "[Y], which is the capital"
        if verb is None and not _ARTICLE.match(rest):
            return f"What {rest}?".replace(_SLOT_X, "{}")  # "What contains the ..."
        return f"What {verb or 'is'} {rest}?".replace(_SLOT_X, "{}")
    return None


_PLACED = re.compile(r"^\[X\] (is|was|are|were) (\w+) (?:in|at) \[Y\]$")
_WHEREABOUTS = frozenset({"located", "situated", "based", "found", "headquartered"})


def _where(pattern: str) -> list[str]:
    """Where-questions of a place pattern: "[X] is located in [Y]" → "Where is {} located?"
    and "Where is {}?"; "[X] was born in [Y]" → "Where was {} born?"."""
    match = _PLACED.match(_tidy(pattern))
    if match is None:
        return []
    aux, participle = match.groups()
    if participle == "written":  # "written in [Y]" takes a language, not a place
        return []
    asked = [f"Where {aux} {{}} {participle}?"]
    return [*asked, f"Where {aux} {{}}?"] if participle in _WHEREABOUTS else asked


def _echo(pattern: str) -> str | None:
    """The pattern with the object asked in place: "[X] is a [Y] by profession" → "{} is
    a what by profession?"."""
    text = _tidy(pattern)
    if text.count(_SLOT_Y) != 1 or text.startswith(_SLOT_Y) or f"{_SLOT_Y}-" in text:
        return None
    text = re.sub(r"\b(?:a|an) \[Y\]", _SLOT_Y, text)
    return text.replace(_SLOT_Y, "what").replace(_SLOT_X, "{}").rstrip(",") + "?"


_WH_AUX = re.compile(r"^(?:what|which|who|where)(?: \w+)? (was|were|did) (.+?)\??$", re.I)
_TRAILING_PREPOSITION = re.compile(r"\s+(?:in|by|at|on|of|for|with|from|to)$")
_QUANTITY_HEADS = ("When", "In which year", "In what year")
_PASSIVE = re.compile(
    r"^\{\},? (?:(?:that|which|who) )?(?:is|was|were|are) (?:originally |first )?"
    r"(\w+(?:ed|en|wn|ade|ilt|orn|ung))(?: (?:by|in|on|at|from))?$"
)


def quantity_question(question: str, rng: random.Random) -> str | None:
    """A question with the words of ``question`` (a "{}" template) but asking a date:
    "Which city was {} born in?" → "When was {} born?"; "Who founded {}?" has no
    auxiliary and gives None. None of the relations here has a date for its object, so
    each such question is out of scope of the edit (the classifier reads the answer
    type from :attr:`~kme_rag.scope.features.PairMention.asks_quantity`)."""
    passive = _PASSIVE.match(question.strip())
    if passive is not None:  # a cloze: "{} is developed by", "{} was born in"
        return f"{rng.choice(_QUANTITY_HEADS)} was {{}} {passive.group(1)}?"
    match = _WH_AUX.match(question.strip())
    if match is None or "{}" not in match.group(2):
        return None
    rest = _TRAILING_PREPOSITION.sub("", match.group(2).strip())
    return f"{rng.choice(_QUANTITY_HEADS)} {match.group(1)} {rest}?"


def phrase(relation: ParaRelRelation, subject: str, form: str, rng: random.Random) -> str | None:
    """``subject`` asked ``relation`` in ``form`` (one of :data:`FORMS`), or None when the
    relation has no phrasing of that form."""
    questions = [*relation.wh_questions, *relation.questions, *relation.where_questions]
    echoes = [e for p in relation.patterns if (e := _echo(p))]
    clozes = relation.clozes()
    if form == "cloze":
        pool = clozes
    elif form == "echo":
        pool = echoes
    else:
        pool = questions or echoes
    if not pool:
        return None
    return surface(rng.choice(pool).replace("{}", subject, 1), subject, form, rng)


def _phrasings(relation: ParaRelRelation) -> list[str]:
    """Every phrasing of ``relation`` with a ``{}`` slot: clozes and questions."""
    return [
        *relation.clozes(),
        *relation.wh_questions,
        *relation.where_questions,
        *relation.questions,
    ]


def load_relations(data_dir: Path) -> dict[str, ParaRelRelation]:
    """ParaRel's relations, with MQuAKE's question template of the same id when there
    is one (empty when ``pararel/`` is absent)."""
    folder = data_dir / "pararel" / "patterns"
    questions_path = data_dir / "mquake" / "prompts" / "question_templates.json"
    asked = json.loads(questions_path.read_text()) if questions_path.is_file() else {}
    out = {}
    for path in sorted(folder.glob("P*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        patterns = tuple(r["pattern"] for r in rows)
        name = rows[0]["lemma"].replace("-", " ") if rows else path.stem
        question = asked.get(path.stem)
        extra = (question.replace(_SLOT_X, "{}"),) if question else ()
        out[path.stem] = ParaRelRelation(path.stem, name, patterns, extra)
    return out


def _links(relations: dict[str, ParaRelRelation]) -> dict[str, set[str]]:
    """Relations sharing a phrasing (by its words): never each other's negatives."""
    by_text: dict[str, set[str]] = {}
    for rid, relation in relations.items():
        for text in (*relation.patterns, *relation.questions):
            key = " ".join(re.findall(r"\w+", text.lower()))
            by_text.setdefault(key, set()).add(rid)
    links: dict[str, set[str]] = {rid: set() for rid in relations}
    for rids in by_text.values():
        for rid in rids:
            links[rid] |= rids - {rid}
    return links


def evaluation_subjects(data_dir: Path, extra: Iterable[Path] = ()) -> set[str]:
    """Normalised subjects (and aliases) of every evaluation split under ``data_dir``
    (CounterFact's edit file, zsRE records 500-999, MQuAKE's evaluation files) and of
    the JSONL sets in ``extra`` (the held-out natural sets)."""
    names: set[str] = set()
    cf = data_dir / "counterfact" / "counterfact-edit.json"
    if cf.is_file():
        names |= {r["subject"] for r in json.loads(cf.read_text())}
    zsre = data_dir / "zsre" / "zsre_mend_train-1k.json"
    if zsre.is_file():
        names |= {r["subject"] for r in json.loads(zsre.read_text())[500:]}
    for name in MQUAKE_EVAL_FILES:
        path = data_dir / "mquake" / name
        if path.is_file():
            for case in json.loads(path.read_text()):
                names |= {r["subject"] for r in case["requested_rewrite"]}
                names |= {t[0] for t in case.get("orig", {}).get("triples_labeled", [])}
    for path in extra:
        if not path.is_file():
            raise ConfigurationError(f"expected a held-out set at {path}")
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                names |= {row["subject"], *row.get("subject_aliases", ())}
    return {normalise_name(n) for n in names if n}


def _edit(relation: ParaRelRelation, subject: str, target: str, rng: random.Random) -> Edit:
    """The subject's edit of ``relation``, written as users write one: half the time a
    ParaRel cloze as its template, else the relation's name ("capital")."""
    clozes = relation.clozes()
    fields: dict[str, str] = {"subject": subject, "target_new": target, "source": "pararel"}
    if clozes and rng.random() < 0.5:
        template = rng.choice(clozes)
        fields |= {"relation": template, "prompt": template}
    else:
        fields["relation"] = relation.name
    return parse_edit({**fields, "relation_id": relation.rid})


def pararel_pairs(
    data_dir: Path,
    rng: random.Random,
    *,
    exclude: set[str],
    per_relation: int = 300,
    asked: int = 2,
    unlike: Callable[[Sequence[str]], Sequence[str]] | None = None,
    bank: QuestionBank | None = None,
) -> tuple[list[Pair], dict[str, int]]:
    """Pairs from ParaRel (see the module docstring): up to ``per_relation`` subjects of
    each relation, each asked its own relation and ``asked`` other ParaRel relations,
    each in a form drawn from :data:`FORMS`.

    ``unlike(phrasings)``: question templates ("What year was {} founded?") unlike every
    one of ``phrasings`` (the training questions of zsRE and MQuAKE, filtered by
    :class:`~kme_rag.scope.data.RelationPool`). When given, each subject is also asked
    one of them: the relations ParaRel lacks (dates, people, numbers) asked of the
    edited subject.

    ``bank``: MQuAKE's questions by relation id; each subject is also asked two of them
    of relations neither its own nor linked to it (:meth:`QuestionBank.negatives`)."""
    relations = load_relations(data_dir)
    links = _links(relations)
    ids = sorted(relations)
    pairs: list[Pair] = []
    dropped = 0
    for rid in ids:
        path = data_dir / "pararel" / "trex" / f"{rid}.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        objects = sorted({r["obj_label"] for r in rows})
        kept = [r for r in rows if normalise_name(r["sub_label"]) not in exclude]
        dropped += len(rows) - len(kept)
        own = _phrasings(relations[rid])
        for row in rng.sample(kept, min(per_relation, len(kept))):
            subject = row["sub_label"]
            others = [o for o in objects if o != row["obj_label"]] or objects
            edit = _edit(relations[rid], subject, rng.choice(others), rng)
            edit = edit.model_copy(update={"id": f"pararel-{rid}-{len(pairs)}"})
            for form in rng.sample(FORMS, asked):
                text = phrase(relations[rid], subject, form, rng)
                if text:
                    pairs.append(Pair(text, edit, True, edit.id, f"pararel-{form}"))
            if unlike is not None:
                pool = unlike(own)
                if pool:
                    form = rng.choice(("question", "casual", "typo", "chat", "embedded"))
                    text = surface(rng.choice(pool).replace("{}", subject, 1), subject, form, rng)
                    pairs.append(Pair(text, edit, False, edit.id, "pararel-other-question"))
            dated = [t for q in own if (t := quantity_question(q, rng))]
            if dated:
                form = rng.choice(("question", "casual", "chat", "embedded"))
                text = surface(rng.choice(dated).replace("{}", subject, 1), subject, form, rng)
                pairs.append(Pair(text, edit, False, edit.id, "pararel-quantity"))
            if bank is not None:
                other_ids = bank.negatives(rid, subject, own, rng, also_linked=links[rid])
                pairs += [Pair(q, edit, False, edit.id, "pararel-other-id") for q in other_ids]
            negatives = [o for o in ids if o != rid and o not in links[rid]]
            for other in rng.sample(negatives, min(asked, len(negatives))):
                form = rng.choice(FORMS)
                text = phrase(relations[other], subject, form, rng)
                if text:
                    pairs.append(Pair(text, edit, False, edit.id, f"pararel-other-{form}"))
    return pairs, {"pararel_dropped_eval_subject": dropped, "pararel_relations": len(ids)}
