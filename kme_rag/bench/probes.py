"""Ask a case's three probes (prompt, paraphrase, neighbourhood) and build harness rows.

The rows have the schema of :func:`kme_rag.bench.harness.run_cases`, so
:func:`kme_rag.bench.harness.summarise` scores them; the unedited answers (the locality
reference) are asked once per case and reused at every store size or checkpoint, since
the unedited model does not change.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from kme_rag.backends import Backend, Message
from kme_rag.bench.harness import PROBES, Case
from kme_rag.editor import Answer, KnowledgeEditor

__all__ = ["Reference", "edited_row", "references"]


@dataclass(frozen=True)
class Reference:
    """The unedited model's answer to one probe and its milliseconds."""

    text: str
    ms: float


def _ask_unedited(backend: Backend, case: Case, text: str, max_tokens: int) -> str:
    if case.kind == "cloze":
        return backend.complete(text, max_tokens=max_tokens)
    message: Message = {"role": "user", "content": text}
    return backend.chat([message], max_tokens=max_tokens)


def references(
    backend: Backend, cases: Sequence[Case], max_tokens: int
) -> dict[str, dict[str, Reference]]:
    """``{case_id: {probe: Reference}}``: the unedited answers of every probe."""
    out: dict[str, dict[str, Reference]] = {}
    for case in cases:
        out[case.case_id] = {}
        for probe in PROBES:
            start = time.perf_counter()
            text = _ask_unedited(backend, case, getattr(case, probe), max_tokens)
            out[case.case_id][probe] = Reference(text, (time.perf_counter() - start) * 1000)
    return out


def _tokens(backend: Backend, sent: str | list[Message]) -> int | None:
    count: Callable[[str], int] | None = getattr(backend, "count_tokens", None)
    if count is None:
        return None
    text = sent if isinstance(sent, str) else "\n".join(m["content"] for m in sent)
    return int(count(text))


def _ask(editor: KnowledgeEditor, case: Case, text: str) -> tuple[Answer, float]:
    start = time.perf_counter()
    answer = editor.complete(text) if case.kind == "cloze" else editor.ask(text)
    return answer, (time.perf_counter() - start) * 1000


def edited_row(
    editor: KnowledgeEditor,
    case: Case,
    refs: dict[str, Reference],
    stored_subject_conflicts: Collection[str] = (),
    probes: Sequence[str] = PROBES,
) -> dict[str, Any]:
    """One harness row: each probe asked through ``editor`` beside its unedited answer.
    ``stored_subject_conflicts``: case ids whose neighbourhood prompt names another
    stored edit's subject (:func:`kme_rag.bench.harness.locality_conflicts`)."""
    row: dict[str, Any] = {
        "case_id": case.case_id,
        "target_new": case.edit.target_new,
        "locality_names_stored_subject": case.case_id in stored_subject_conflicts,
    }
    for probe in probes:
        text = getattr(case, probe)
        answer, ms = _ask(editor, case, text)
        row[probe] = {
            "question": text,
            "reference": refs[probe].text,
            "reference_ms": refs[probe].ms,
            "text": answer.text,
            "route": answer.route,
            "latency_ms": ms,
            "prompt_tokens": _tokens(editor.backend, answer.sent),
        }
    return row
