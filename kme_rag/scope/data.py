"""Training pairs for the scope classifier, from the splits marked for training only.

Every pair is (query, edit, in scope?). Sources:

- ``counterfact-train.json``: the edit's prompt and paraphrase (in scope); its
  neighbourhood prompt and other edits' prompts sharing its relation or object (out); the
  edit's subject asked about *another relation* (a template of another relation filled
  with the subject: out) — the negative that teaches the classifier to read the relation,
  not just the name.
- zsRE ``zsre_mend_train-1k.json`` records 0-499 (500-999 are for evaluation): question
  and rephrase (in), ``loc`` question (out), subject asked about another relation (out).
- ``mquake/scope-pairs-cls-filtered.json``: an edit's single-hop questions (in); other
  pairs' questions about the same subject and another relation (out); the subject asked
  other relations' questions from the bank of questions by relation id
  (:class:`~kme_rag.scope.wikidata.QuestionBank`: out). Pairs whose edit occurs in any
  MQuAKE evaluation file are dropped.
- Chat requests that name the subject without asking the relation ("Write a poem about
  X"): out.

Relations are not labelled in the flattened CounterFact form, so templates are grouped
into relations by :func:`relation_groups` (a record's neighbourhood prompt is by
construction the same relation as its prompt). Question templates from MQuAKE are used as
other-relation negatives only when they are unlike every template of the edit's relation
(cosine below ``SIMILAR``), so a paraphrase of the edit's own relation is never labelled
out of scope.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kme_rag.memory.edit import Edit, normalise_name, parse_edit
from kme_rag.memory.embedder import Embedder
from kme_rag.memory.formats import counterfact_edit, zsre_edit
from kme_rag.memory.graph import FactGraph
from kme_rag.memory.mention import MASK, STOP_WORDS, name_tokens
from kme_rag.scope.wikidata import QuestionBank

__all__ = [
    "MQUAKE_EVAL_FILES",
    "SIMILAR",
    "ZSRE_TRAIN",
    "Pair",
    "RelationPool",
    "TrainingData",
    "count_kinds",
    "relation_groups",
    "training_pairs",
]

ZSRE_TRAIN = range(0, 500)  # records 500-999 of zsre_mend_train-1k.json are for evaluation
MQUAKE_EVAL_FILES = (
    "MQuAKE-CF-3k-subset354.json",
    "MQuAKE-CF-slice300.json",
    "MQuAKE-T-first50.json",
)
_COPULAS = frozenset({"is", "was", "are", "were"})
SIMILAR = 0.55
_WORD = re.compile(r"\w+")  # template cosine above which two phrasings may ask the same relation
CHAT_TEMPLATES = (
    "Write a short poem about {}.",
    "Tell me a joke about {}.",
    "How do you spell {}?",
    "Translate the name {} into French.",
    "Summarise what you know about {} in one sentence.",
    "Is {} mentioned in any famous songs?",
    "Give me three fun facts about {}.",
    "How is {} pronounced?",
    "Write a haiku that mentions {}.",
    "Why is {} famous?",
)
# A longer name that starts with the subject names something else: "BBC Radio" → "BBC Radio 1".
NAME_SUFFIXES = ("2", "II", "Junior", "Foundation", "Records", "Airport", "Museum", "Online")


@dataclass(frozen=True)
class Pair:
    """One training example; ``group`` (the edit) keeps an edit's pairs on one side of
    the train/validation split, ``kind`` says where the pair came from."""

    query: str
    edit: Edit
    label: bool
    group: str
    kind: str


@dataclass(frozen=True)
class TrainingData:
    pairs: list[Pair]
    counts: dict[str, int]
    files: dict[str, str]
    relations: RelationPool | None = None  # the relation phrasings the pairs came from
    bank: QuestionBank | None = None  # MQuAKE's questions by relation id


def _template_of(prompt: str, subject: str) -> str | None:
    return prompt.replace(subject, "{}", 1) if subject in prompt and "{" not in prompt else None


def _matcher(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(template).replace(r"\{\}", "(.+)") + "$")


def relation_groups(records: Sequence[dict[str, Any]]) -> dict[str, int]:
    """CounterFact templates → relation group, by union-find over (prompt template,
    neighbourhood prompt's template) pairs: both ask the same relation."""
    templates = {t for r in records if (t := _template_of(r["prompt"], r["subject"]))}
    ordered = sorted(templates, key=lambda t: (-len(t), t))  # most specific match first
    matchers = [(t, _matcher(t)) for t in ordered]
    parent = {t: t for t in ordered}

    def find(t: str) -> str:
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    for record in records:
        own = _template_of(record["prompt"], record["subject"])
        if own is None:
            continue
        for other, matcher in matchers:
            if matcher.match(record["locality_prompt"]):
                parent[find(other)] = find(own)
                break
    roots = sorted({find(t) for t in ordered})
    return {t: roots.index(find(t)) for t in ordered}


def paraphrase_links(
    records: Sequence[dict[str, Any]], groups: dict[str, int], least: int = 20
) -> dict[int, set[int]]:
    """Relation groups CounterFact itself uses as paraphrases of each other: a record's
    paraphrase ends with a template of group B while its prompt is of group A, at least
    ``least`` times ("{} was created in the country of" / "{} was originally from").
    Such groups are never used as each other's negatives."""
    ordered = sorted(groups, key=lambda t: (-len(t), t))
    counts: dict[tuple[int, int], int] = {}
    for record in records:
        own = _template_of(record["prompt"], record["subject"])
        if own is None:
            continue
        for template in ordered:
            if record["rephrase_prompt"].endswith(_fill(template, record["subject"])):
                pair = (groups[own], groups[template])
                counts[pair] = counts.get(pair, 0) + 1
                break
    links: dict[int, set[int]] = {}
    for (a, b), n in counts.items():
        if a != b and n >= least:
            links.setdefault(a, set()).add(b)
            links.setdefault(b, set()).add(a)
    return links


class RelationPool:
    """Which phrasings may *not* ask an edit's relation: its other-relation negatives."""

    def __init__(
        self,
        groups: dict[str, int],
        questions: list[str],
        embedder: Embedder,
        linked: dict[int, set[int]] | None = None,
    ):
        self.groups = groups
        self.linked = linked or {}
        self.by_group: dict[int, list[str]] = {}
        for template, group in groups.items():
            self.by_group.setdefault(group, []).append(template)
        self._embedder = embedder
        self._vectors: dict[str, np.ndarray] = {}
        self._templates = list(groups)
        self._questions = questions
        self._t = self._embed(self._templates)  # (templates, dim)
        self._q = self._embed(questions)  # (questions, dim)
        self._cache: dict[tuple[tuple[str, ...], int | None], tuple[list[str], list[str]]] = {}

    def _embed(self, templates: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(templates) if t not in self._vectors]
        if missing:
            vectors = self._embedder.embed([t.replace("{}", MASK) for t in missing])
            self._vectors.update(zip(missing, vectors, strict=True))
        return np.stack([self._vectors[t] for t in templates])

    def negatives(self, own: Sequence[str], group: int | None) -> tuple[list[str], list[str]]:
        """(CounterFact templates, question templates) of other relations: templates
        outside ``group`` (and, when the group is unknown, unlike every phrasing in
        ``own``), question templates with cosine below :data:`SIMILAR` to all of ``own``."""
        key = (tuple(own), group)
        if key not in self._cache:
            mine = self._embed(own)  # (own, dim)
            near_t = (self._t @ mine.T).max(axis=1)  # (templates,)
            near_q = (self._q @ mine.T).max(axis=1)  # (questions,)
            # A known group is reliable: every template outside it asks another relation,
            # however alike the words ("took up work in" / "the domain of work of").
            templates = [
                t
                for t, s in zip(self._templates, near_t, strict=True)
                if self.groups[t] != group
                and self.groups[t] not in self.linked.get(group or -1, ())
                and (group is not None or s < SIMILAR)
            ]
            questions = [q for q, s in zip(self._questions, near_q, strict=True) if s < SIMILAR]
            self._cache[key] = (templates, questions)
        return self._cache[key]


def _fill(template: str, subject: str) -> str:
    return template.replace("{}", subject, 1)


def _other_relation(
    edit: Edit, relations: RelationPool, own: Sequence[str], group: int | None, rng: random.Random
) -> list[Pair]:
    """The edit's subject asked about two other relations (a cloze and a question) and
    named by a chat request that asks no relation: all out of scope."""
    assert edit.subject
    templates, questions = relations.negatives(own, group)
    pairs = []
    for pool, kind in ((templates, "other-relation"), (questions, "other-relation-question")):
        if pool:
            pairs.append(Pair(_fill(rng.choice(pool), edit.subject), edit, False, edit.id, kind))
    chat = _fill(rng.choice(CHAT_TEMPLATES), edit.subject)
    pairs.append(Pair(chat, edit, False, edit.id, "chat"))
    return pairs


def counterfact_pairs(
    records: Sequence[dict[str, Any]], relations: RelationPool, rng: random.Random
) -> list[Pair]:
    """Pairs from CounterFact training records (see the module docstring)."""
    by_group: dict[int, list[dict[str, Any]]] = {}
    by_object: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        template = _template_of(record["prompt"], record["subject"])
        if template is not None:
            by_group.setdefault(relations.groups[template], []).append(record)
        for obj in (record["target_new"], record["ground_truth"]):
            by_object.setdefault(obj, []).append(record)
    by_token: dict[str, list[str]] = {}
    for subject in sorted({r["subject"] for r in records}):
        for token in set(name_tokens(subject)) - STOP_WORDS:
            by_token.setdefault(token, []).append(subject)
    pairs = []
    for record in records:
        edit = counterfact_edit(record, "counterfact-train").model_copy(
            update={"id": f"cf-{record['case_id']}"}
        )
        own = _template_of(record["prompt"], record["subject"])
        group = relations.groups.get(own) if own else None
        pairs += [
            Pair(record["prompt"], edit, True, edit.id, "prompt"),
            Pair(record["rephrase_prompt"], edit, True, edit.id, "rephrase"),
            Pair(record["locality_prompt"], edit, False, edit.id, "neighbourhood"),
        ]
        same_relation = by_group.get(group, []) if group is not None else []
        same_object = by_object.get(record["target_new"], []) + by_object.get(
            record["ground_truth"], []
        )
        for pool, kind in ((same_relation, "same-relation"), (same_object, "same-object")):
            other = rng.choice(pool) if pool else None
            if other is not None and other["subject"] != record["subject"]:
                pairs.append(Pair(other["prompt"], edit, False, edit.id, kind))
        phrasings = relations.by_group.get(group, []) if group is not None else [edit.prompt or ""]
        pairs += _other_relation(edit, relations, phrasings, group, rng)
        pairs += _other_name(edit, phrasings, by_token, rng)
    return pairs


def _other_name(
    edit: Edit,
    phrasings: Sequence[str],
    by_token: dict[str, list[str]],
    rng: random.Random,
) -> list[Pair]:
    """The edit's relation asked about another entity whose name shares a word with the
    subject ("George Grey" for "George Dance the Younger") or runs on from it ("BBC Radio
    1" for "BBC Radio"): out of scope."""
    assert edit.subject
    template = rng.choice(list(phrasings)) if phrasings else None
    if template is None:
        return []
    pairs = []
    sharing = [
        name
        for token in name_tokens(edit.subject)
        if token not in STOP_WORDS
        for name in by_token.get(token, [])
        if name != edit.subject
    ]
    for other in rng.sample(sharing, min(2, len(sharing))):
        pairs.append(Pair(_fill(template, other), edit, False, edit.id, "shared-word-name"))
    longer = f"{edit.subject} {rng.choice(NAME_SUFFIXES)}"
    pairs.append(Pair(_fill(template, longer), edit, False, edit.id, "longer-name"))
    return pairs


def mined_pairs(
    records: Sequence[dict[str, Any]],
    questions: Sequence[str],
    relations: RelationPool,
    rng: random.Random,
    per_text: int = 2,
) -> list[Pair]:
    """Pairs as a full store produces them: every CounterFact training edit is stored,
    and each training query (prompt, paraphrase, neighbourhood prompt) and each unrelated
    question is paired with stored edits whose subject it names — a longer name
    ("Royal Palace of Athens"), a preamble, another relation of the same subject. In
    scope only when the text asks that edit's relation about that subject."""
    edits = {}
    for record in records:
        edit = counterfact_edit(record, "counterfact-train")
        edits[record["case_id"]] = edit.model_copy(update={"id": f"cf-{record['case_id']}"})
    graph = FactGraph(edits.values())
    group_of = {e.id: relations.groups.get(e.prompt or "") for e in edits.values()}
    pairs = []
    texts: list[tuple[str, Edit | None, str]] = [
        (record[field], edits[record["case_id"]], field)
        for record in records
        for field in ("prompt", "rephrase_prompt", "locality_prompt")
    ]
    texts += [(q, None, "unrelated") for q in questions]
    for text, own, field in texts:
        named = [e for e in graph.mentioned(text) if own is None or e.id != own.id]
        for edit in rng.sample(named, min(per_text, len(named))):
            assert edit.subject
            group = group_of[edit.id]
            phrasings = relations.by_group.get(group, []) if group is not None else []
            label = any(text.endswith(_fill(t, edit.subject)) for t in phrasings)
            if not label and own is not None and field != "locality_prompt":
                label = edit.subject == own.subject and group == group_of[own.id]
            pairs.append(Pair(text, edit, label, edit.id, f"mined-{field}"))
    return pairs


def zsre_pairs(
    records: Sequence[dict[str, Any]], relations: RelationPool, rng: random.Random
) -> list[Pair]:
    """Pairs from zsRE training records 0-499."""
    pairs = []
    for i in ZSRE_TRAIN:
        record = records[i]
        edit = zsre_edit(record, "zsre-train", i).model_copy(update={"id": f"zsre-{i}"})
        pairs += [
            Pair(record["src"], edit, True, edit.id, "zsre-question"),
            Pair(record["rephrase"], edit, True, edit.id, "zsre-rephrase"),
            Pair(record["loc"].removeprefix("nq question: "), edit, False, edit.id, "zsre-loc"),
        ]
        if edit.prompt:
            pairs += _other_relation(edit, relations, [edit.prompt], None, rng)
    return pairs


def mquake_eval_statements(files: Iterable[Path]) -> set[str]:
    """Normalised "subject relation object" statements of every MQuAKE evaluation edit."""
    out = set()
    for path in files:
        for case in json.loads(path.read_text()):
            for rewrite in case["requested_rewrite"]:
                text = (
                    f"{rewrite['prompt'].format(rewrite['subject'])} {rewrite['target_new']['str']}"
                )
                out.add(normalise_name(text))
    return out


def statement_subject(statement: str, questions: Sequence[str]) -> str | None:
    """The longest capitalised word run of ``statement`` that every question names."""
    words = statement.split()
    for n in range(len(words) - 1, 0, -1):
        for i in range(len(words) - n + 1):
            subject = " ".join(words[i : i + n])
            named = subject[:1].isupper() or subject[:1].isdigit()
            content = any(t not in STOP_WORDS for t in name_tokens(subject))
            if named and content and all(subject in q for q in questions):
                return subject
    return None


def _object_start(words: list[str], asked: set[str]) -> int:
    """Where the object begins: the longest tail of ``words`` no question uses (case
    kept, so "University" is not "university"; a stop
    word inside a name, "University *of* Chicago", does not end it)."""
    start = len(words)
    while start > 0:
        word = _WORD.findall(words[start - 1])
        if not any(t in asked for t in word):
            start -= 1
            continue
        left = _WORD.findall(words[start - 2]) if start >= 2 else []
        inside = (
            all(t.casefold() in STOP_WORDS for t in word)
            and left
            and not any(t in asked for t in left)
        )
        if not inside or start == len(words):
            break
        start -= 1
    return start


def _parse_statement(
    statement: str, questions: Sequence[str], templates: Sequence[str]
) -> Edit | None:
    """An MQuAKE pair's statement as a structured edit. The subject is the longest word
    run every question names; the template is the CounterFact template the statement
    starts with or, failing that, the statement up to the object (the tail no question
    uses: "The author of {} is" + "Jean Giraudoux")."""
    subject = statement_subject(statement, questions)
    if subject is None:
        return None
    found = None
    for template in templates:
        head = _fill(template, subject) + " "
        if statement.startswith(head) and len(statement) > len(head):
            found = template, statement[len(head) :]
            break
    if found is None:
        before, _, after = statement.partition(subject)
        words = after.split()
        asked = {t for q in questions for t in _WORD.findall(q)}  # case kept: "University"
        start = _object_start(words, asked)
        relation_words = [w for w in words[:start] if w.casefold() not in _COPULAS]
        if start in (0, len(words)) or not (before.strip() or relation_words):
            return None
        found = (
            f"{before}{{}} {' '.join(words[:start])}".replace("{} '", "{}'"),
            " ".join(words[start:]),
        )
    template, target = found
    fields = {"subject": subject, "relation": template, "prompt": template, "target_new": target}
    return parse_edit({**fields, "source": "mquake-scope-pairs"})


def mquake_pairs(
    records: Sequence[dict[str, Any]],
    held_out: set[str],
    relations: RelationPool,
    rng: random.Random,
    bank: QuestionBank | None = None,
) -> tuple[list[Pair], dict[str, int]]:
    """Pairs from MQuAKE scope pairs, minus those whose edit an evaluation file holds.

    With ``bank``, each edit whose relation id it knows is also asked two questions of
    other relations (:meth:`QuestionBank.negatives`): out of scope by identity."""
    templates = sorted(relations.groups, key=lambda t: (-len(t), t))
    parsed: list[tuple[Edit, list[str]]] = []
    ids: dict[str, str] = {}  # edit id -> its Wikidata relation, where the bank knows it
    dropped = unparsed = 0
    for i, record in enumerate(records):
        if normalise_name(record["edit"]) in held_out:
            dropped += 1
            continue
        edit = _parse_statement(record["edit"], record["questions"], templates)
        if edit is None:
            unparsed += 1
            continue
        parsed.append(
            (edit.model_copy(update={"id": f"mq-{i}"}), list(dict.fromkeys(record["questions"])))
        )
        if bank is not None and (rid := bank.relation(record["edit"])):
            ids[f"mq-{i}"] = rid
    by_subject: dict[str, list[tuple[Edit, list[str]]]] = {}
    for edit, questions in parsed:
        assert edit.subject
        by_subject.setdefault(edit.subject, []).append((edit, questions))
    pairs = []
    for edit, questions in parsed:
        assert edit.subject and edit.prompt
        group = relations.groups.get(edit.prompt)
        pairs += [Pair(q, edit, True, edit.id, "mquake-question") for q in questions]
        for other, other_questions in by_subject[edit.subject]:
            if other.prompt and relations.groups.get(other.prompt) != group:
                pairs.append(
                    Pair(rng.choice(other_questions), edit, False, edit.id, "mquake-other")
                )
        phrasings = (
            relations.by_group.get(group, [edit.prompt]) if group is not None else [edit.prompt]
        )
        pairs += _other_relation(edit, relations, phrasings, group, rng)
        if bank is not None and edit.id in ids:
            asked = bank.negatives(ids[edit.id], edit.subject, questions, rng)
            pairs += [Pair(q, edit, False, edit.id, "mquake-other-id") for q in asked]
    return pairs, {
        "mquake_dropped_eval": dropped,
        "mquake_unparsed": unparsed,
        "mquake_edits": len(parsed),
    }


def training_pairs(data_dir: Path, embedder: Embedder, seed: int = 0) -> TrainingData:
    """Every training pair, from the training splits under ``data_dir``."""
    rng = random.Random(seed)
    cf_path = data_dir / "counterfact" / "counterfact-train.json"
    zsre_path = data_dir / "zsre" / "zsre_mend_train-1k.json"
    mq_dir = data_dir / "mquake"
    mq_path = mq_dir / "scope-pairs-cls-filtered.json"
    questions_path = mq_dir / "prompts" / "question_templates.json"
    clozes_path = mq_dir / "prompts" / "cloze_templates.json"
    counterfact = json.loads(cf_path.read_text())
    groups = relation_groups(counterfact)
    questions = [q.replace("[X]", "{}") for q in json.loads(questions_path.read_text()).values()]
    zsre = json.loads(zsre_path.read_text())
    # zsRE's training questions ask ~100 more relations, in the words people use.
    questions += sorted(
        {t for i in ZSRE_TRAIN if (t := _template_of(zsre[i]["src"], zsre[i]["subject"]))}
    )
    relations = RelationPool(groups, questions, embedder, paraphrase_links(counterfact, groups))
    pairs = counterfact_pairs(counterfact, relations, rng)
    pairs += zsre_pairs(zsre, relations, rng)
    unrelated = [zsre[i]["loc"].removeprefix("nq question: ") for i in ZSRE_TRAIN]
    pairs += mined_pairs(counterfact, unrelated, relations, rng)
    held_out = mquake_eval_statements(mq_dir / name for name in MQUAKE_EVAL_FILES)
    records = json.loads(mq_path.read_text())
    bank = None
    if clozes_path.is_file():  # without the cloze templates, no question knows its relation
        bank = QuestionBank.build(records, json.loads(clozes_path.read_text()), held_out)
    mq, counts = mquake_pairs(records, held_out, relations, rng, bank)
    pairs += mq
    count_kinds(pairs, counts)
    counts["relation_groups"] = len(set(groups.values()))
    counts["bank_relations"] = len(bank.by_id) if bank else 0
    counts["bank_phrasings"] = sum(len(t) for t in bank.by_id.values()) if bank else 0
    files = [cf_path, zsre_path, mq_path, questions_path, *([clozes_path] if bank else [])]
    hashes = {str(p.relative_to(data_dir)): sha(p) for p in files}
    return TrainingData(pairs, counts, hashes, relations, bank)


def count_kinds(pairs: Iterable[Pair], counts: dict[str, int]) -> None:
    """Add each pair's ``kind`` to ``counts`` (the training card's tally)."""
    for pair in pairs:
        counts[pair.kind] = counts.get(pair.kind, 0) + 1


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
