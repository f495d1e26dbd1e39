"""Relations and relation chains: which facts, in which order, a question asks for.

A :class:`RelationBank` holds, per relation, a question template ("Which country is [X]
located in?"), a cloze, and a *noun phrase* derived from the question by a small generic
rewrite of English wh-questions ("the country [X] is located in"). Noun phrases nest, so
a chain of relations composes into one question:

    P27 then P35 → "What is the name of the current head of state in
                    the country of citizenship of [X]?"

:func:`infer_chain` masks the question's subject, then beam-searches over relation
chains (depth ≤ 4), scoring each composed question by its embedding cosine with the
masked question and by how well the chain's *types* line up: each relation's answered
examples (``rel-prompts.json``) give it a subject type and an object type (mean
embeddings), so "capital of" fits after "country of citizenship" and not after "sport".
The compositions do not depend on the question, so their embeddings are cached across
questions: every chain of one and two hops is embedded once (:meth:`RelationBank.warm`,
~2,000 texts, kept in a file under the cache folder when the embedder has an identity), so
a question costs one embedding and a matrix product unless it is searched deeper (a
question worded as a composition, or one whose best two-hop chain already beats every
single relation). The bank comes from MQuAKE's template files and grows with the
relations of the stored edits (their cloze templates).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np

from kme_rag.memory.edit import Edit
from kme_rag.memory.embedder import Embedder

__all__ = ["Chain", "Relation", "RelationBank", "composition_cache", "infer_chain", "noun_phrase"]

SLOT = "[X]"
# An edit template states a bank relation when its cosine with that relation's cloze is
# at least MATCH and beats the runner-up by MARGIN ("[X] is located in the city of" is
# 0.89 from P17's "... in the country of" and 0.87 from P131's: neither).
MATCH = 0.9
MARGIN = 0.03
UNTYPED = 0.3  # the type fit of a link whose relation has no examples
_OWN = "edit:"  # prefix of relations taken from edits that match no bank relation
_AUX = r"(is|was|are|were|does|did|do|has|had)"
_WH_NOUN = re.compile(rf"^(?:which|what) ([a-z ]+?) {_AUX} (.+)$", re.IGNORECASE)
_WH_AUX = re.compile(rf"^(who|what|where|when) {_AUX} (.+)$", re.IGNORECASE)
_WH_VERB = re.compile(r"^who (\w+) (.+)$", re.IGNORECASE)
_WH_HEAD = {"who": "the person", "what": "the thing", "where": "the place", "when": "the time"}


def _invert(aux: str, rest: str) -> str | None:
    """``"[X] located in"`` with ``"is"`` → ``"[X] is located in"``: the auxiliary goes
    back after the phrase that holds the slot."""
    end = rest.find(SLOT)
    if end < 0:
        return None
    end += len(SLOT)
    if rest[end:].startswith("'s"):
        return None
    head, tail = rest[:end], rest[end:].strip()
    return f"{head} {aux} {tail}".strip()


def noun_phrase(question: str) -> str | None:
    """The noun phrase a wh-question asks for, with the slot kept: "What is the capital
    of [X]?" → "the capital of [X]"; "Which city was [X] born in?" → "the city [X] was
    born in"; "Who founded [X]?" → "the person who founded [X]". None when the question
    has no slot or another shape."""
    text = question.strip().rstrip("?").strip()
    if SLOT not in text:
        return None
    match = _WH_NOUN.match(text)
    if match:
        noun, aux, rest = match.groups()
        inverted = _invert(aux.lower(), rest)
        return f"the {noun.lower()} {inverted}" if inverted else None
    match = _WH_AUX.match(text)
    if match:
        wh, aux, rest = match.groups()
        if rest.lower().startswith(("the ", "a ", "an ")) or f"{SLOT}'s" in rest:
            return rest[0].lower() + rest[1:]  # "Who is the author of [X]" → "the author of [X]"
        inverted = _invert(aux.lower(), rest)
        if inverted is None:
            return None
        joiner = " where " if wh.lower() == "where" else " "
        return f"{_WH_HEAD[wh.lower()]}{joiner}{inverted}"
    match = _WH_VERB.match(text)
    if match:
        return f"the person who {match.group(1)} {match.group(2)}"
    return None


_TRAILING_NOUN = re.compile(r"^(.*\[X\].*?) the (\w+) of$")


def _cloze_phrase(cloze: str) -> str:
    """A noun phrase from a cloze template: "The capital of [X] is" → "the capital of
    [X]"; "[X] is located in the city of" → "the city [X] is located in"; "[X] is a
    citizen of" → "what [X] is a citizen of"."""
    text = cloze.replace("__", "").strip()
    if text.lower().startswith("the ") and text.endswith(" is"):
        return text[:-3][0].lower() + text[1:-3]
    match = _TRAILING_NOUN.match(text)
    if match:
        return f"the {match.group(2)} {match.group(1)}"
    return f"what {text}"


def _informative(phrase: str) -> bool:
    """Whether a noun phrase says anything beyond its slot ("the [X]" does not)."""
    words = re.findall(r"[a-z]+", phrase.replace(SLOT, "").lower())
    return any(w not in {"the", "a", "an", "person", "thing", "who", "what"} for w in words)


def _edit_cloze(edit: Edit) -> str | None:
    """An edit's cloze with the slot: its template ("[X] is located in the city of"),
    else "The capital of [X] is" from a relation name."""
    if not edit.structured:
        return None
    template = edit.template()
    if template is not None:
        return template.replace("{}", SLOT).strip()
    return f"The {edit.relation} of {SLOT} is"


def _examples(question: str, block: str) -> tuple[list[str], list[str]]:
    """The (subjects, objects) of a relation's answered examples ("Q: What is the
    capital of Germany? A: Berlin"), read back through its question template."""
    pattern = re.compile(
        "^Q: " + re.escape(question).replace(re.escape(SLOT), "(.+?)") + r" A: (.+)$"
    )
    pairs = [m.groups() for m in map(pattern.match, block.split("\n")) if m]
    return [p[0] for p in pairs], [p[1] for p in pairs]


@dataclass(frozen=True)
class Relation:
    """One relation: an id, a question template, a cloze and the derived noun phrase."""

    id: str
    question: str  # "Which country is [X] located in?"
    cloze: str  # "[X] is located in the country of"
    phrase: str  # "the country [X] is located in"

    def ask(self, subject: str) -> str:
        return self.question.replace(SLOT, subject)


@dataclass(frozen=True)
class Chain:
    """Relations in the order they are walked from the question's subject, and the
    cosine of their composition with the masked question."""

    relations: tuple[Relation, ...]
    score: float

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.relations)


def compose(relations: Sequence[Relation], subject: str = SLOT) -> str:
    """The question a chain asks: the last relation's question about the nested noun
    phrases of the others, innermost first."""
    inner = subject
    for relation in relations[:-1]:
        inner = relation.phrase.replace(SLOT, inner)
    return relations[-1].question.replace(SLOT, inner)


@dataclass
class RelationBank:
    """The relations chains are built from, and a cache of composition embeddings."""

    relations: dict[str, Relation]
    embedder: Embedder
    # relation id -> examples (subjects, objects): the relation's type signature
    examples: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    _cache: dict[tuple[str, ...], np.ndarray] = field(default_factory=dict, repr=False)
    _matched: dict[str, str] = field(default_factory=dict, repr=False)  # template -> id
    _types: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    # where composition embeddings persist between processes (None: in memory only)
    cache_file: Path | None = None
    _warm: frozenset[str] = field(default_factory=frozenset, repr=False)

    @classmethod
    def from_mquake(cls, data_dir: Path | None, embedder: Embedder) -> RelationBank:
        """The 44 Wikidata relations of MQuAKE's template files (an empty bank when the
        files are absent: the stored edits' relations are then the only ones); ``data_dir``
        None reads the copies shipped in the package."""
        from kme_rag.multihop.hops import prompts_folder

        folder = prompts_folder(data_dir)
        if not (folder / "question_templates.json").is_file():
            return cls({}, embedder)
        questions = json.loads((folder / "question_templates.json").read_text(encoding="utf-8"))
        clozes = json.loads((folder / "cloze_templates.json").read_text(encoding="utf-8"))
        relations = {}
        for rid, question in sorted(questions.items()):
            cloze = clozes.get(rid, "").replace("__", "").strip()
            phrase = noun_phrase(question) or _cloze_phrase(cloze)
            if not _informative(phrase):
                continue  # "Who is the [X]?" (P1308) matches any "Who is the ..." question
            relations[rid] = Relation(rid, question, cloze, phrase)
        shots = json.loads((folder / "rel-prompts.json").read_text(encoding="utf-8"))
        examples = {
            rid: _examples(relations[rid].question, shots.get(rid, "")) for rid in relations
        }
        return cls(relations, embedder, {r: e for r, e in examples.items() if e[0]})

    def relation_of(self, edit: Edit) -> str | None:
        """The bank relation an edit states: its ``relation_id`` when the bank has it,
        else the relation whose cloze is nearest the edit's template (cosine ≥
        ``MATCH``), else the edit's own relation added by :meth:`add_edits`."""
        if edit.relation_id and edit.relation_id in self.relations:
            return edit.relation_id
        cloze = _edit_cloze(edit)
        if cloze is None:
            return None
        template = cloze.replace(SLOT, "X")
        if template not in self._matched:
            ids = [r for r in sorted(self.relations) if not r.startswith(_OWN)]
            best: str | None = None
            if ids:
                clozes = [self.relations[r].cloze.replace(SLOT, "X") for r in ids]
                vectors = self.embedder.embed([template, *clozes])
                scores = vectors[1:] @ vectors[0]
                order = np.argsort(-scores)
                top, runner = (
                    float(scores[order[0]]),
                    float(scores[order[1]]) if len(ids) > 1 else 0.0,
                )
                best = ids[int(order[0])] if top >= MATCH and top - runner >= MARGIN else None
            self._matched[template] = best or f"{_OWN}{template}"
        matched = self._matched[template]
        return matched if matched in self.relations else None

    def add_edits(self, edits: Iterable[Edit]) -> int:
        """Add the relations of stored edits that no bank relation matches, from their
        cloze templates. Returns how many were added."""
        added = 0
        for edit in edits:
            cloze = _edit_cloze(edit)
            if cloze is None or self.relation_of(edit) is not None:
                continue
            rid = self._matched[cloze.replace(SLOT, "X")]
            phrase = _cloze_phrase(cloze)
            self.relations[rid] = Relation(rid, f"What is {phrase}?", cloze, phrase)
            added += 1
        return added

    def signature(self, rid: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(subject type, object type) of a relation: the normalised mean embeddings of
        its example subjects and objects; None for a relation without examples."""
        if rid not in self._types and rid in self.examples:
            subjects, objects = self.examples[rid]
            vectors = self.embedder.embed([*subjects, *objects])
            subject, obj = vectors[: len(subjects)].mean(0), vectors[len(subjects) :].mean(0)
            self._types[rid] = (subject / np.linalg.norm(subject), obj / np.linalg.norm(obj))
        return self._types.get(rid)

    def fit(self, chain: tuple[str, ...], subject: np.ndarray) -> float:
        """How well a chain's types line up: the mean cosine of the subject with the first
        relation's subjects, and of each relation's objects with the next one's subjects
        ("capital of" after "country of citizenship": countries meet countries). A link
        without examples counts ``UNTYPED``."""
        types = [self.signature(r) for r in chain]
        links = [float(subject @ types[0][0]) if types[0] is not None else UNTYPED]
        for before, after in pairwise(types):
            links.append(float(before[1] @ after[0]) if before and after else UNTYPED)
        return sum(links) / len(links)

    def _vectors(self, chains: Sequence[tuple[str, ...]]) -> np.ndarray:
        missing = [c for c in chains if c not in self._cache]
        if missing:
            texts = [compose([self.relations[r] for r in c], "X") for c in missing]
            for chain, vector in zip(missing, self.embedder.embed(texts), strict=True):
                self._cache[chain] = vector
        return np.stack([self._cache[c] for c in chains])

    def warm(self) -> int:
        """Embed every chain of one and two hops not cached yet (read first from
        :attr:`cache_file`, and written back when anything new was embedded). Runs again
        only when relations were added. Returns how many texts were embedded."""
        ids = frozenset(self.relations)
        if ids == self._warm:
            return 0
        chains: list[tuple[str, ...]] = [(a,) for a in sorted(ids)]
        chains += [(a, b) for a in sorted(ids) for b in sorted(ids) if a != b]
        texts = {c: compose([self.relations[r] for r in c], "X") for c in chains}
        stored = _read_vectors(self.cache_file) if self.cache_file else {}
        for chain, text in texts.items():
            if chain not in self._cache and text in stored:
                self._cache[chain] = stored[text]
        missing = [c for c in chains if c not in self._cache]
        if missing:
            self._vectors(missing)
        if missing and self.cache_file is not None:
            stored.update((texts[c], self._cache[c]) for c in chains)
            _write_vectors(self.cache_file, stored)
        self._warm = ids
        return len(missing)


def composition_cache(cache_dir: Path, identity: str) -> Path:
    """The file under ``cache_dir`` that holds an embedder's composition embeddings."""
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16]
    return cache_dir / "compositions" / f"{digest}.npz"


def _read_vectors(path: Path) -> dict[str, np.ndarray]:
    """Text → embedding from an ``.npz`` written by :func:`_write_vectors` (empty when the
    file is missing or unreadable: the cache is only ever a shortcut)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return dict(zip(data["texts"].tolist(), data["vectors"], strict=True))
    except (OSError, ValueError, KeyError):
        return {}


def _write_vectors(path: Path, vectors: dict[str, np.ndarray]) -> None:
    """Write atomically (a temporary file renamed over the old one), so a reader in
    another process sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    texts = sorted(vectors)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(partial, texts=np.array(texts), vectors=np.stack([vectors[t] for t in texts]))
    os.replace(partial, path)


def infer_chain(
    bank: RelationBank,
    masked_question: str,
    *,
    subject: str | None = None,
    max_hops: int = 4,
    beam: int = 6,
    hop_penalty: float = 0.02,
    anchors: Iterable[str] = (),
    anchor_bonus: float = 0.05,
    type_weight: float = 0.3,
    deepen_margin: float | None = None,
) -> list[Chain]:
    """Relation chains for a question whose subject is masked as "X", best first (and,
    when no single relation is among the ``beam`` best, the best single relation last).

    Beam search: every chain of length 1, then each of the ``beam`` best chains extended
    by every relation, up to ``max_hops``. A chain scores the cosine of its composition
    with the masked question, minus ``hop_penalty`` per hop beyond the first (a longer
    composition has more words to match by chance), plus ``anchor_bonus`` when it starts
    with one of ``anchors`` (relations an edit of the question's subject states), plus
    ``type_weight`` times :meth:`RelationBank.fit` of the chain to the ``subject``'s
    embedding (0 when no subject is given). Penalty, bonus and weight were set on the
    first 40 cases of MQuAKE-CF-slice300 and checked on its next 60 (type weight
    0.3: 62% of cases with a right chain against 52% without).

    With ``deepen_margin``, chains of three hops or more are searched only when the best
    two-hop chain beats the best single relation by that margin: a question that two hops
    do not explain better than one is not a deeper composition either, and the one- and
    two-hop chains are all cached (:meth:`RelationBank.warm`), so such a question costs
    no new embedding. None searches to ``max_hops`` always."""
    bank.warm()
    vectors = bank.embedder.embed([masked_question, subject or ""])
    query_vector, subject_vector = vectors[0], vectors[1]
    weight = type_weight if subject else 0.0
    anchored = set(anchors)
    ids = sorted(bank.relations)
    scored: dict[tuple[str, ...], float] = {}
    frontier: list[tuple[str, ...]] = [()]
    for depth in range(max_hops):
        chains = [(*prefix, r) for prefix in frontier for r in ids if r not in prefix]
        scores = bank._vectors(chains) @ query_vector - hop_penalty * depth
        scores += anchor_bonus * np.array([c[0] in anchored for c in chains], dtype=float)
        if weight:
            scores += weight * np.array([bank.fit(c, subject_vector) for c in chains])
        ranked = sorted(zip(chains, scores.tolist(), strict=True), key=lambda cs: -cs[1])
        scored.update(ranked)
        frontier = [c for c, _ in ranked[:beam]]
        if depth == 1 and deepen_margin is not None:
            singles = max(v for c, v in scored.items() if len(c) == 1)
            if ranked[0][1] < singles + deepen_margin:
                break
    ranked = sorted(scored.items(), key=lambda cs: -cs[1])
    best = ranked[:beam]
    single = next((cs for cs in ranked if len(cs[0]) == 1), None)
    if single is not None and single not in best:  # the best single hop, for comparison
        best.append(single)
    return [Chain(tuple(bank.relations[r] for r in c), s) for c, s in best]
