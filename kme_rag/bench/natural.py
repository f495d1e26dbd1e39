"""The held-out natural set: hand-written questions about facts the model knows.

``benchmarks/heldout/natural-v1.jsonl`` (its README says how it was made; never tune or
train on it) holds one edit per record and the questions that probe it, by *kind*:

- in scope of the edit — ``formal`` ("What is the capital of France?"), ``casual`` ("whats
  the capital of france"), ``chat`` (the question inside a longer message);
- out of scope — ``same_subject`` (the edited subject, another relation) and
  ``neighbour`` (another subject, the same relation).

Every question is asked twice: of the unedited model (the reference) and of the editor
exactly as ``kme ask`` builds it (:meth:`KnowledgeEditor.from_settings`: default
parameters, the shipped scope, the graph walk). The figures (:func:`summarise_natural`):

- **efficacy**: the first formal question's answer states the new object; **generality**
  formal (the other formal questions), casual and chat, the same;
- **stale rate**: the old object appears in an in-scope answer;
- **same-subject / neighbour locality**: the answer is identical to the reference; with
  ``--edits all`` also over the questions that name no *other* stored edit's subject
  (decided from the data); and the **leak** rate: the new object appears in the answer
  but not in the reference (a neighbour's own answer may be the new object: "Which
  country is Zurich in?" after Munich → Switzerland);
- how in-scope questions were routed, and a **routing diagnostic**: of the answers that
  state the new object, how many had it prefilled by the editor or looked up by the graph
  walk (the model did not generate it), and how many the model wrote itself;
- route counts per kind, latency p50/p95; Wilson 95% intervals on every rate.

Answers are checked by :func:`~kme_rag.matching.contains_answer` only.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from kme_rag.editor import Answer, KnowledgeEditor
from kme_rag.errors import ValidationError
from kme_rag.matching import contains_answer
from kme_rag.memory.edit import Edit, parse_edit
from kme_rag.report.intervals import wilson

if TYPE_CHECKING:
    from kme_rag.backends import Backend
    from kme_rag.memory.store import EditMemory
    from kme_rag.settings import Settings

__all__ = [
    "DEFAULT_SET",
    "IN_SCOPE",
    "NaturalCase",
    "NaturalRun",
    "Question",
    "QuestionKind",
    "bench_natural",
    "load_natural",
    "prefilled",
    "run_natural",
    "summarise_natural",
]

QuestionKind = Literal["formal", "casual", "chat", "same_subject", "neighbour"]
KINDS: tuple[QuestionKind, ...] = get_args(QuestionKind)
IN_SCOPE: tuple[QuestionKind, ...] = ("formal", "casual", "chat")
OUT_OF_SCOPE: tuple[QuestionKind, ...] = ("same_subject", "neighbour")
DEFAULT_SET = Path("benchmarks/heldout/natural-v1.jsonl")
UNEDITED = "none"  # the route recorded for an answer of the unedited model


@dataclass(frozen=True)
class Question:
    """One question of a case; ``relation`` only for same-subject questions."""

    kind: QuestionKind
    text: str
    relation: str | None = None


@dataclass(frozen=True)
class NaturalCase:
    """One edit of the set and its questions, in asking order."""

    case_id: str
    edit: Edit
    questions: tuple[Question, ...]


def _texts(record: dict[str, Any], where: str, values: Any) -> list[str]:
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(v, str) and v.strip() for v in values)
    ):
        raise ValidationError(
            f"record {record.get('id')!r}: expected {where} to be a non-empty list of "
            f"non-empty strings, got {values!r}"
        )
    return values


def _case(record: dict[str, Any], source: str) -> NaturalCase:
    """One JSONL record as a case (the fields the set's README documents)."""
    edit = parse_edit(
        {
            "id": record.get("id"),
            "subject": record.get("subject"),
            "relation": record.get("relation"),
            "relation_id": record.get("relation_id"),
            "prompt": record.get("prompt"),
            "target_true": record.get("target_true"),
            "target_new": record.get("target_new"),
            "subject_aliases": record.get("subject_aliases") or [],
            "source": f"bench:{source}#{record.get('id')}",
        }
    )
    asked = record.get("questions")
    if not isinstance(asked, dict):
        raise ValidationError(f"record {edit.id!r}: expected questions to be an object")
    questions = [
        Question(kind, text)
        for kind in IN_SCOPE
        for text in _texts(record, f"questions.{kind}", asked.get(kind))
    ]
    same = record.get("same_subject")
    if not isinstance(same, list) or not same:
        raise ValidationError(f"record {edit.id!r}: expected a non-empty same_subject list")
    for item in same:
        if not isinstance(item, dict) or not {"question", "relation"} <= item.keys():
            raise ValidationError(
                f"record {edit.id!r}: expected same_subject items {{question, relation}}, "
                f"got {item!r}"
            )
        questions.append(Question("same_subject", item["question"], item["relation"]))
    questions += [
        Question("neighbour", text)
        for text in _texts(record, "neighbours", record.get("neighbours"))
    ]
    return NaturalCase(edit.id, edit, tuple(questions))


def load_natural(path: Path) -> list[NaturalCase]:
    """The cases of a natural-set file (JSON lines), with their ids unique."""
    if not path.is_file():
        raise ValidationError(f"expected the natural set at {str(path)!r} (give --data)")
    with path.open(encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    cases = [_case(r, path.name) for r in records]
    ids = Counter(c.case_id for c in cases)
    if repeated := sorted(i for i, n in ids.items() if n > 1):
        raise ValidationError(f"expected unique ids in {path.name}, got repeats {repeated}")
    return cases


def prefilled(answer: Answer) -> bool:
    """Whether the editor wrote the in-scope edit's new object as the start of the
    answer (route ``ike`` with a completion prompt that ends with it), so the model did
    not generate the object itself."""
    if answer.route != "ike" or not answer.edits or not isinstance(answer.sent, str):
        return False
    return answer.sent.endswith(f" {answer.edits[0].target_new}")


def names_other_subject(text: str, own: Edit, stored: Sequence[Edit]) -> bool:
    """Whether ``text`` names the subject of a stored edit other than ``own``."""
    from kme_rag.scope.base import mentions_subject

    return any(e.id != own.id and mentions_subject(text, e) for e in stored)


# ---- running ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class NaturalRun:
    """One ``kme bench natural`` run."""

    method: Literal["none", "kme"] = "kme"
    edits_mode: Literal["one", "all"] = "all"
    data: Path = DEFAULT_SET
    # kme: also ask every in-scope question of an editor that prefills nothing (the model
    # writes the answer under the fact block): the generated efficacy and stale rate
    generate: bool = True


def _ask(editor: KnowledgeEditor, text: str) -> tuple[Answer, float]:
    start = time.perf_counter()
    answer = editor.ask(text)
    return answer, (time.perf_counter() - start) * 1000


def _reference(backend: Backend, text: str, max_tokens: int) -> tuple[str, float]:
    """The unedited answer, as ``kme ask`` passes an out-of-scope question through."""
    start = time.perf_counter()
    reply = backend.chat([{"role": "user", "content": text}], max_tokens=max_tokens)
    return reply, (time.perf_counter() - start) * 1000


def _row(
    question: Question,
    case: NaturalCase,
    backend: Backend,
    editor: KnowledgeEditor | None,
    stored: Sequence[Edit],
    generator: KnowledgeEditor | None = None,
) -> dict[str, Any]:
    """One question asked unedited and (with an editor) through the editor; an in-scope
    question also through ``generator`` (the editor with ``answer="generate"``)."""
    from kme_rag.editor import EditorParams

    reference, ref_ms = _reference(backend, question.text, EditorParams().max_tokens)
    row: dict[str, Any] = {
        "kind": question.kind,
        "question": question.text,
        "relation": question.relation,
        "reference": reference,
        "reference_ms": round(ref_ms, 1),
        "names_other_subject": names_other_subject(question.text, case.edit, stored),
        "text": reference,
        "route": UNEDITED,
        "edits": [],
        "prefilled": False,
        "latency_ms": round(ref_ms, 1),
    }
    if editor is not None:
        answer, ms = _ask(editor, question.text)
        row.update(
            text=answer.text,
            route=answer.route,
            edits=answer.edit_ids,
            prefilled=prefilled(answer),
            latency_ms=round(ms, 1),
        )
    if generator is not None and question.kind in IN_SCOPE:
        answer, ms = _ask(generator, question.text)
        row["generated"] = {"text": answer.text, "route": answer.route, "latency_ms": round(ms, 1)}
    return row


def run_natural(
    cases: Sequence[NaturalCase],
    settings: Settings,
    backend: Backend,
    memory: EditMemory,
    run: NaturalRun,
) -> Iterator[dict[str, Any]]:
    """Ask every question of every case, unedited and (method ``kme``) through the editor;
    yield one row per case.

    ``all`` stores every edit, then builds the editor once (as a ``kme ask`` process
    started after the edits were added would); ``one`` stores each case's edit alone,
    builds the editor over it and undoes the edit afterwards. ``settings`` must name
    ``memory``'s store: the editor is built from both."""
    edited, each = run.method == "kme", run.edits_mode == "one"
    stored = [] if each else [c.edit for c in cases]
    editor = generator = None

    def build() -> tuple[KnowledgeEditor, KnowledgeEditor | None]:
        made = KnowledgeEditor.from_settings(settings, memory, backend=backend)
        if not run.generate:
            return made, None
        return made, KnowledgeEditor.from_settings(
            settings, memory, backend=backend, answer="generate"
        )

    if edited and not each:
        memory.add_many(stored)
        editor, generator = build()
    for case in cases:
        if edited and each:
            memory.add(case.edit)
            editor, generator = build()
        asked = [_row(q, case, backend, editor, stored, generator) for q in case.questions]
        if edited and each:
            memory.undo()
        yield {
            "case_id": case.case_id,
            "subject": case.edit.subject,
            "relation": case.edit.relation,
            "target_true": case.edit.target_true,
            "target_new": case.edit.target_new,
            "questions": asked,
        }


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def bench_natural(settings: Settings, run: NaturalRun, out: Path) -> dict[str, Any]:
    """Run ``run`` on a fresh scratch store and write ``out`` and its rows."""
    from kme_rag.backends import make_backend
    from kme_rag.bench.output import CaseRows, write_result
    from kme_rag.editor import EditorParams
    from kme_rag.memory.store import EditMemory

    cases = load_natural(run.data)
    scratch = settings.model_copy(
        update={"store": Path(tempfile.mkdtemp(prefix="kme-natural-")), "chroma_url": None}
    )
    backend = make_backend(scratch)
    memory = EditMemory.open(scratch)
    start = time.perf_counter()
    with CaseRows(out, len(cases), desc="natural") as table:
        rows = table.extend(run_natural(cases, scratch, backend, memory, run))
    summary = {
        "kind": "natural",
        "dataset": run.data.name,
        "dataset_sha256": sha256_of(run.data),
        "method": run.method,
        "generate": run.generate and run.method == "kme",
        "model": backend.name,
        "edits_mode": run.edits_mode,
        "max_tokens": EditorParams().max_tokens,
        "seconds": round(time.perf_counter() - start, 1),
        **summarise_natural(rows),
    }
    return write_result(out, summary, table)


# ---- summarising (pure) -------------------------------------------------------------------


def _rate(k: int, n: int) -> dict[str, Any]:
    """``k``/``n`` with its Wilson 95% interval (``None`` rate when ``n`` is 0)."""
    interval = wilson(k, n)
    if n == 0:
        return {"rate": None, "low": None, "high": None, "k": 0, "n": 0}
    return {
        "rate": round(interval.value, 4),
        "low": round(interval.low, 4),
        "high": round(interval.high, 4),
        "k": k,
        "n": n,
    }


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 1)


def _asked(rows: Sequence[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for row in rows:
        for item in row["questions"]:
            yield row, item


def summarise_natural(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The figures of :func:`run_natural` rows (see the module docstring).

    A row is ``{"target_true", "target_new", "questions": [{"kind", "text", "reference",
    "route", "prefilled", "names_other_subject", "latency_ms", "reference_ms"}, ...]}``;
    a case's first formal question is its efficacy question."""
    efficacy: list[bool] = []
    by_kind: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {k: [] for k in KINDS}
    for row in rows:
        formal = [q for q in row["questions"] if q["kind"] == "formal"]
        if formal:
            efficacy.append(contains_answer(formal[0]["text"], row["target_new"]))
        seen_first = False
        for item in row["questions"]:
            if item["kind"] == "formal" and not seen_first:
                seen_first = True  # the efficacy question, not a generality one
                continue
            by_kind[item["kind"]].append((row, item))

    def states_new(pairs: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
        return _rate(sum(contains_answer(q["text"], r["target_new"]) for r, q in pairs), len(pairs))

    in_scope = [(r, q) for r, q in _asked(rows) if q["kind"] in IN_SCOPE]
    stale = sum(contains_answer(q["text"], r["target_true"] or "") for r, q in in_scope)
    figures: dict[str, Any] = {
        "efficacy": _rate(sum(efficacy), len(efficacy)),
        "generality_formal": states_new(by_kind["formal"]),
        "generality_casual": states_new(by_kind["casual"]),
        "generality_chat": states_new(by_kind["chat"]),
        "in_scope_all": states_new(in_scope),
        "stale": _rate(stale, len(in_scope)),
        **_generated(rows),
    }
    for kind in OUT_OF_SCOPE:
        pairs = [(r, q) for r, q in _asked(rows) if q["kind"] == kind]
        clean = [(r, q) for r, q in pairs if not q["names_other_subject"]]
        figures[f"locality_{kind}"] = _rate(
            sum(q["text"] == q["reference"] for _, q in pairs), len(pairs)
        )
        figures[f"locality_{kind}_unrelated"] = _rate(
            sum(q["text"] == q["reference"] for _, q in clean), len(clean)
        )
        leaked = [(r, q) for r, q in pairs if not contains_answer(q["reference"], r["target_new"])]
        figures[f"leak_{kind}"] = _rate(
            sum(contains_answer(q["text"], r["target_new"]) for r, q in leaked), len(pairs)
        )
    return {
        "figures": figures,
        "routing_diagnostic": _routing(in_scope),
        "counts": _counts(rows),
        "routes": {
            kind: dict(Counter(q["route"] for _, q in _asked(rows) if q["kind"] == kind))
            for kind in KINDS
        },
        "latency_ms": _latency(rows),
    }


def _generated(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Efficacy, generality and the stale rate of the answers the model wrote with
    nothing prefilled (rows with ``generated``; empty for runs without)."""
    first: list[tuple[dict[str, Any], dict[str, Any]]] = []
    rest: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {k: [] for k in IN_SCOPE}
    for row in rows:
        seen_first = False
        for item in row["questions"]:
            if "generated" not in item:
                continue
            if item["kind"] == "formal" and not seen_first:
                seen_first = True
                first.append((row, item["generated"]))
            else:
                rest[item["kind"]].append((row, item["generated"]))
    if not first:
        return {}

    def states(pairs: Sequence[tuple[dict[str, Any], dict[str, Any]]], key: str) -> dict[str, Any]:
        return _rate(sum(contains_answer(g["text"], r[key] or "") for r, g in pairs), len(pairs))

    every = first + [p for pairs in rest.values() for p in pairs]
    return {
        "generated_efficacy": states(first, "target_new"),
        **{f"generated_generality_{k}": states(v, "target_new") for k, v in rest.items()},
        "generated_in_scope_all": states(every, "target_new"),
        "generated_stale": states(every, "target_true"),
    }


def _routing(in_scope: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """Of the in-scope questions: how many were routed to an edit (any route but
    pass-through), and where the new object of each answer that states it came from:
    ``prefilled`` by the editor, looked up by the ``graph_walk`` (route ``multihop``), or
    ``generated`` by the model. A prefilled or looked-up object counted as correct measures
    the routing, not the model."""
    routed = [q for _, q in in_scope if q["route"] not in ("passthrough", UNEDITED)]
    correct = [q for r, q in in_scope if contains_answer(q["text"], r["target_new"])]
    prefill = sum(q["prefilled"] for q in correct)
    walked = sum(q["route"] == "multihop" and not q["prefilled"] for q in correct)
    generated = len(correct) - prefill - walked
    return {
        "routed_in_scope": _rate(len(routed), len(in_scope)),
        "correct_by_source": {"prefilled": prefill, "graph_walk": walked, "generated": generated},
        "generated_correct": _rate(generated, len(in_scope)),
        "note": "routing diagnostic: a prefilled or looked-up object counted as correct "
        "measures the routing, not the model's generation",
    }


def _counts(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    kinds = Counter(q["kind"] for _, q in _asked(rows))
    return {
        "edits": len(rows),
        "relations": len({r["relation"] for r in rows}),
        "questions": {kind: kinds.get(kind, 0) for kind in KINDS},
        "names_other_subject": {
            kind: sum(q["names_other_subject"] for _, q in _asked(rows) if q["kind"] == kind)
            for kind in OUT_OF_SCOPE
        },
    }


def _latency(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    every = [q for _, q in _asked(rows)]
    per_kind = {
        kind: _percentile([q["latency_ms"] for q in every if q["kind"] == kind], 0.5)
        for kind in KINDS
    }
    return {
        "p50": _percentile([q["latency_ms"] for q in every], 0.5),
        "p95": _percentile([q["latency_ms"] for q in every], 0.95),
        "unedited_p50": _percentile([q["reference_ms"] for q in every], 0.5),
        "p50_by_kind": per_kind,
    }
