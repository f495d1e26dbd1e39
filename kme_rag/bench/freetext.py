"""``kme bench freetext``: the held-out free-text set, through the editor.

``benchmarks/heldout/freetext-v1.jsonl`` (its README says how it was made; never tune on
it): statements phrased as people write news or notes, each with questions its new facts
must answer and questions that must not change. Each statement is stored alone with
:meth:`EditMemory.add_text` (the reader ``kme edit add --text`` uses; undone afterwards),
then its questions are asked through the editor exactly as ``kme ask`` builds it
(:meth:`KnowledgeEditor.from_settings`):

- *answered with the new fact*: the answer names the fact's new object or an alias
  (:func:`~kme_rag.matching.contains_answer`), split by whether the reader stored a fact
  holding that object;
- *must-not-change kept*: the answer is identical to the unedited model's at the editor's
  answer length (same-subject, neighbour and unrelated questions apart);
- *add time*: each statement's ``add_text`` (the reader warmed up first), p50 and p95.

Ablations (labelled in the summary): ``gate=False`` scopes statements no fact was read from
by the cosine alone (``TrainedScope.statement_gate`` off), ``patterns`` reads the text with
:class:`~kme_rag.memory.extract.PatternExtractor`.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kme_rag.bench.natural import _rate, sha256_of
from kme_rag.editor import EditorParams, KnowledgeEditor
from kme_rag.matching import contains_answer

if TYPE_CHECKING:
    from kme_rag.backends import Backend, Message
    from kme_rag.memory.extract import Extractor
    from kme_rag.memory.store import EditMemory
    from kme_rag.settings import Settings

__all__ = ["DEFAULT_SET", "FreeTextRun", "bench_freetext", "summarise_freetext"]

DEFAULT_SET = Path("benchmarks/heldout/freetext-v1.jsonl")
KEPT_KINDS = ("same_subject", "neighbour", "unrelated")


@dataclass(frozen=True)
class FreeTextRun:
    data: Path = DEFAULT_SET
    gate: bool = True  # statements gated by the names they speak of
    patterns: bool = False  # the pattern extractor instead of the classifier reader


def run_freetext(
    items: Sequence[dict[str, Any]],
    editor: KnowledgeEditor,
    backend: Backend,
    memory: EditMemory,
    extractor: Extractor | None,
    add_ms: list[float],
) -> Iterator[dict[str, Any]]:
    """One row per question of each item; ``add_ms`` collects each ``add_text`` time."""
    tokens = EditorParams().max_tokens
    for item in items:
        start = time.perf_counter()
        added = memory.add_text(item["statement"], source="bench:freetext", extractor=extractor)
        add_ms.append((time.perf_counter() - start) * 1000)
        try:
            asked = [("question", q) for q in item["questions"]]
            asked += [(q["kind"], q) for q in item["must_not_change"]]
            for kind, entry in asked:
                turns: list[Message] = [{"role": "user", "content": entry["question"]}]
                answer = editor.chat(turns)
                row: dict[str, Any] = {
                    "id": item["id"],
                    "kind": kind,
                    "question": entry["question"],
                    "text": answer.text,
                    "route": answer.route,
                    "edits": answer.edit_ids,
                    "facts": [
                        [e.subject, e.relation, e.target_new] for e in added.stored if e.structured
                    ],
                }
                if kind == "question":
                    fact = item["facts"][entry["fact"]]
                    names = (fact["object"], *fact["object_aliases"])
                    row["right"] = any(contains_answer(answer.text, n) for n in names)
                    row["fact_extracted"] = any(
                        e.structured and any(contains_answer(e.target_new or "", n) for n in names)
                        for e in added.stored
                    )
                else:
                    row["kept"] = answer.text == backend.chat(turns, max_tokens=tokens)
                yield row
        finally:
            memory.undo()


def bench_freetext(settings: Settings, run: FreeTextRun, out: Path) -> dict[str, Any]:
    """Run the set on a fresh scratch store and write ``out`` and its rows."""
    from kme_rag.backends import make_backend
    from kme_rag.bench.output import CaseRows, write_result
    from kme_rag.memory.store import EditMemory

    items = [json.loads(line) for line in run.data.read_text(encoding="utf-8").splitlines() if line]
    scratch = settings.model_copy(
        update={"store": Path(tempfile.mkdtemp(prefix="kme-freetext-")), "chroma_url": None}
    )
    backend = make_backend(scratch)
    memory = EditMemory.open(scratch)
    editor = KnowledgeEditor.from_settings(scratch, memory, backend=backend)
    extractor = None
    if run.patterns:
        from kme_rag.memory.extract import PatternExtractor

        extractor = PatternExtractor()
    if not run.gate:
        from kme_rag.scope.classifier import TrainedScope

        assert isinstance(editor.scope, TrainedScope)
        editor.scope.statement_gate = False
    memory.add_text("Oslo is the capital of Norway.", extractor=extractor)  # warm-up
    memory.undo()
    add_ms: list[float] = []
    start = time.perf_counter()
    total = sum(len(i["questions"]) + len(i["must_not_change"]) for i in items)
    with CaseRows(out, total, desc="freetext") as table:
        rows = table.extend(run_freetext(items, editor, backend, memory, extractor, add_ms))
    summary = {
        "kind": "freetext",
        "dataset": run.data.name,
        "dataset_sha256": sha256_of(run.data),
        "method": "kme",
        "path": "editor (as kme ask)",
        "extractor": "patterns" if run.patterns else "classifier",
        "statement_gate": run.gate,
        "model": backend.name,
        "edits_mode": "one",
        "max_tokens": EditorParams().max_tokens,
        "seconds": round(time.perf_counter() - start, 1),
        "add_text_ms": {
            "p50": round(statistics.median(add_ms), 1),
            "p95": round(sorted(add_ms)[int(0.95 * (len(add_ms) - 1))], 1),
            "statements": len(add_ms),
        },
        **summarise_freetext(rows),
    }
    return write_result(out, summary, table)


def summarise_freetext(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The figures of :func:`run_freetext` rows (see the module docstring)."""
    questions = [r for r in rows if r["kind"] == "question"]
    keeps = [r for r in rows if r["kind"] != "question"]

    def share(group: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
        return _rate(sum(bool(r[key]) for r in group), len(group))

    figures = {
        "answered_with_new_fact": share(questions, "right"),
        "answered_when_fact_extracted": share(
            [r for r in questions if r["fact_extracted"]], "right"
        ),
        "answered_when_not_extracted": share(
            [r for r in questions if not r["fact_extracted"]], "right"
        ),
        "must_not_change_kept": share(keeps, "kept"),
        **{f"kept_{k}": share([r for r in keeps if r["kind"] == k], "kept") for k in KEPT_KINDS},
    }
    return {
        "figures": figures,
        "routes": {
            "question": dict(Counter(r["route"] for r in questions)),
            "keep": dict(Counter(r["route"] for r in keeps)),
        },
        "counts": {"questions": len(questions), "must_not_change": len(keeps)},
    }
