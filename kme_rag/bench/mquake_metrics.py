"""MQuAKE evaluation: multi-hop accuracy by the MQuAKE rule, and the prior baseline.

A case is right when any of its 3 questions is answered with the new answer or one of
its aliases (the original answers are scored the same way for the unedited model).
Because MQuAKE's answers are skewed, every accuracy is reported next to the *prior
baseline*: always answering the most common answer of the question's final relation
among the other cases (leave-one-out), scored by the same rule.

Scoring is pure; :func:`run_mquake` asks the questions through any answering function
(the unedited model, MeLLo, the project's method) with the cases' edits stored.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kme_rag.bench.harness import contains_answer
from kme_rag.memory.edit import Edit
from kme_rag.memory.formats import mquake_edits
from kme_rag.memory.store import EditMemory

__all__ = [
    "Hop",
    "MquakeCase",
    "answered",
    "by_edited_hop",
    "by_hops",
    "known_hops",
    "load_mquake",
    "prior_baseline",
    "run_mquake",
    "summarise_mquake",
]

Target = Literal["new", "original"]


@dataclass(frozen=True)
class Hop:
    """One hop of a case's new chain: its single-hop question and answers, and whether
    it is one of the edited facts."""

    question: str
    relation_id: str
    answers: tuple[str, ...]
    edited: bool


@dataclass(frozen=True)
class MquakeCase:
    """One MQuAKE case: its edits, its 3 questions, both answers and the final relation."""

    case_id: str
    edits: tuple[Edit, ...]
    questions: tuple[str, ...]
    new_answers: tuple[str, ...]  # the new answer first, then its aliases
    original_answers: tuple[str, ...]
    hops: int
    final_relation: str  # Wikidata id of the chain's last relation (same before and after)
    new_hops: tuple[Hop, ...] = ()
    passages: tuple[str, ...] = ()  # AKEW's free-text passage of each edit (fact_new_uns)

    def answers(self, target: Target) -> tuple[str, ...]:
        return self.new_answers if target == "new" else self.original_answers


def _case(record: dict[str, Any], source: str) -> MquakeCase:
    triples = record["orig"]["new_triples"]
    edited = {tuple(t) for t in record["orig"].get("edit_triples", [])}
    hops = tuple(
        Hop(h["question"], t[1], (h["answer"], *h.get("answer_alias", [])), tuple(t) in edited)
        for h, t in zip(record.get("new_single_hops", []), triples, strict=False)
    )
    return MquakeCase(
        case_id=str(record["case_id"]),
        edits=tuple(mquake_edits(record, source)),
        questions=tuple(record["questions"]),
        new_answers=(record["new_answer"], *record.get("new_answer_alias", [])),
        original_answers=(record["answer"], *record.get("answer_alias", [])),
        hops=len(triples),
        final_relation=str(triples[-1][1]),
        new_hops=hops,
        passages=tuple(
            r["fact_new_uns"] for r in record["requested_rewrite"] if r.get("fact_new_uns")
        ),
    )


def load_mquake(path: Path, n: int | None = None) -> list[MquakeCase]:
    records = json.loads(path.read_text(encoding="utf-8"))[:n]
    return [_case(r, f"bench:{path.name}") for r in records]


def answered(text: str | None, answers: Sequence[str]) -> bool:
    """Whether an answer names the target or one of its aliases (whole words)."""
    return text is not None and any(contains_answer(text, a) for a in answers)


def prior_baseline(cases: Sequence[MquakeCase], target: Target) -> float:
    """Accuracy of always answering the most common ``target`` answer of the same final
    relation among the *other* cases (leave-one-out), by the MQuAKE rule."""
    by_relation: dict[str, Counter[str]] = {}
    for case in cases:
        by_relation.setdefault(case.final_relation, Counter())[case.answers(target)[0]] += 1
    right = 0
    for case in cases:
        counts = by_relation[case.final_relation].copy()
        counts[case.answers(target)[0]] -= 1
        others = +counts  # the other cases' answers (zero counts dropped)
        guess = max(others.items(), key=lambda kv: (kv[1], kv[0]))[0] if others else None
        right += guess is not None and answered(guess, case.answers(target))
    return round(right / len(cases), 4) if cases else 0.0


def known_hops(cases: Sequence[MquakeCase], ask: Callable[[Hop], str]) -> list[list[bool]]:
    """For each case, whether the unedited model answers each *unedited* hop of its new
    chain (``ask`` puts one hop's question to the model). A case whose list is all True
    is in the known-hops subset: there, any multi-hop miss is the editing system's."""
    return [[answered(ask(h), h.answers) for h in case.new_hops if not h.edited] for case in cases]


def by_hops(cases: Sequence[MquakeCase], right: Sequence[bool]) -> dict[str, float]:
    """Multi-hop accuracy for each chain length."""
    out: dict[str, list[bool]] = {}
    for case, ok in zip(cases, right, strict=True):
        out.setdefault(f"{case.hops}-hop", []).append(ok)
    return {k: round(sum(v) / len(v), 4) for k, v in sorted(out.items())}


def by_edited_hop(cases: Sequence[MquakeCase], right: Sequence[bool]) -> dict[str, Any]:
    """Multi-hop accuracy by where the edits sit: ``first`` (the first hop is edited: the
    question names the edited subject), ``later_only`` (the first hop is the model's and
    an edit sits further on: the question names an unedited subject)."""
    out: dict[str, list[bool]] = {}
    for case, ok in zip(cases, right, strict=True):
        if not case.new_hops or not any(h.edited for h in case.new_hops):
            continue
        out.setdefault("first" if case.new_hops[0].edited else "later_only", []).append(ok)
    return {
        k: {"accuracy": round(sum(v) / len(v), 4), "cases": len(v)} for k, v in sorted(out.items())
    }


Answerer = Callable[[str], tuple[str | None, dict[str, Any]]]  # question -> (answer, extra)


EditsAs = Literal["structured", "passage"]


def store_cases(memory: EditMemory, cases: Sequence[MquakeCase], edits_as: EditsAs) -> int:
    """The cases' edits as structured edits (one change), or only as AKEW's passages (each
    read into facts by :meth:`EditMemory.add_text`, what is not understood kept as a
    statement; one change a passage). Returns how many changes were written."""
    if edits_as == "structured":
        memory.add_many([e for case in cases for e in case.edits])
        return 1
    passages = [(case, p) for case in cases for p in case.passages]
    for case, passage in passages:
        memory.add_text(passage, source=f"{case.edits[0].source}:passage")
    return len(passages)


def run_mquake(
    cases: Sequence[MquakeCase],
    answer: Answerer,
    memory: EditMemory | None,
    *,
    edits_mode: Literal["one", "all"],
    edits_as: EditsAs = "structured",
    single_hop: bool = False,
) -> Iterator[dict[str, Any]]:
    """Ask each case's questions; yield one row per case. With ``edits_mode="all"`` every
    case's edits are stored before the first question (the caller's ``memory`` is
    expected empty); with ``"one"`` each case's edits are stored, asked, and undone
    (:func:`store_cases`). ``single_hop`` also asks each edited hop's own question
    (row ``edited_hops``: answered with the hop's new object)."""
    if memory is not None and edits_mode == "all":
        store_cases(memory, cases, edits_as)
    for case in cases:
        changes = 0
        if memory is not None and edits_mode == "one":
            changes = store_cases(memory, [case], edits_as)
        asked = []
        for question in case.questions:
            start = time.perf_counter()
            text, extra = answer(question)
            ms = (time.perf_counter() - start) * 1000
            asked.append({"question": question, "answer": text, "ms": round(ms, 1), **extra})
        hops = []
        for hop in [h for h in case.new_hops if h.edited] if single_hop else []:
            text, _ = answer(hop.question)
            hops.append(
                {"question": hop.question, "answer": text, "right": answered(text, hop.answers)}
            )
        if memory is not None:
            for _ in range(changes):  # each case's own changes, when stored one at a time
                memory.undo()
        yield {
            "case_id": case.case_id,
            "hops": case.hops,
            "new_answer": case.new_answers[0],
            "original_answer": case.original_answers[0],
            "questions": asked,
            "new_right": [answered(q["answer"], case.new_answers) for q in asked],
            "original_right": [answered(q["answer"], case.original_answers) for q in asked],
            **({"edited_hops": hops} if single_hop else {}),
        }


def summarise_mquake(
    cases: Sequence[MquakeCase],
    rows: Sequence[dict[str, Any]],
    known: Sequence[Sequence[bool]] | None = None,
) -> dict[str, Any]:
    """The harness metrics: MQuAKE-rule accuracy on new and original answers, per-question
    accuracy, accuracy by hops, the prior baselines, latency per question and, given the
    :func:`known_hops` probe, accuracy on the cases whose unedited hops the model knows."""
    new = [any(r["new_right"]) for r in rows]
    original = [any(r["original_right"]) for r in rows]
    per_question = [ok for r in rows for ok in r["new_right"]]
    ms = [q["ms"] for r in rows for q in r["questions"]]
    ms.sort()
    extra: dict[str, Any] = {}
    if known is not None:
        subset = [ok for ok, hops in zip(new, known, strict=True) if all(hops)]
        probed = [ok for hops in known for ok in hops]
        extra = {
            "known_hops_accuracy": round(sum(subset) / len(subset), 4) if subset else None,
            "known_hops_cases": len(subset),
            "unedited_hop_accuracy": round(sum(probed) / len(probed), 4) if probed else None,
        }
    single = [h["right"] for r in rows for h in r.get("edited_hops", [])]
    if single:
        extra["single_hop_accuracy"] = round(sum(single) / len(single), 4)
        extra["single_hops"] = len(single)
    return {
        "metrics": {
            **extra,
            "multihop_accuracy": round(sum(new) / len(rows), 4),
            "question_accuracy": round(sum(per_question) / len(per_question), 4),
            "original_multihop_accuracy": round(sum(original) / len(rows), 4),
            "accuracy_by_hops": by_hops(cases, new),
            "accuracy_by_edited_hop": by_edited_hop(cases, new),
            "prior_baseline": prior_baseline(cases, "new"),
            "prior_baseline_original": prior_baseline(cases, "original"),
        },
        "latency_ms_per_question": {
            "p50": ms[len(ms) // 2],
            "p95": ms[min(len(ms) - 1, int(len(ms) * 0.95))],
        },
    }
