"""``kme bench conversations``: the held-out two-hop and follow-up set, through the editor.

``benchmarks/heldout/multihop-v1.jsonl`` (its README says how it was made; never tune on
it). Each item is asked with its own edit stored alone, through the editor exactly as
``kme ask`` and ``kme chat`` build it (:meth:`KnowledgeEditor.from_settings`: the shipped
scope, the graph walk as a planned route), and of the unedited model (the reference):

- ``hop1`` / ``hop2``: a two-hop question with the edit on the first / second hop; correct
  when the answer states the expected object (:func:`~kme_rag.matching.contains_answer`).
  Reported on the items whose unedited hop the model knows (``verification``, from
  ``verify_multihop.py``) and on all; beside it, as a **diagnostic**, the walker called on
  its own (``GraphWalker.answer``, no routing), the path no user takes;
- ``followup``: a conversation whose last turn asks the edited relation with a pronoun or
  an ellipsis: correct when the answer states the new object;
- ``followup_other`` and ``single``: the last turn asks another relation of the edited
  subject (a follow-up, or a question worded with a relative clause): the answer must be
  the reference, character for character; ``single`` also counts questions *walked*
  (route ``multihop``) by mistake;
- latency: the editor against the unedited model on the questions it passed through (the
  cost of the follow-up resolution and the composition trigger there), and on those of
  them worded as a composition (walked, then not used) apart.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kme_rag.bench.natural import _percentile, _rate, sha256_of
from kme_rag.editor import EditorParams, KnowledgeEditor
from kme_rag.matching import contains_answer
from kme_rag.memory.edit import parse_edit
from kme_rag.multihop.walk import looks_composed

if TYPE_CHECKING:
    from kme_rag.backends import Backend, Message
    from kme_rag.memory.store import EditMemory
    from kme_rag.settings import Settings

__all__ = ["DEFAULT_SET", "ConversationRun", "bench_conversations", "summarise_conversations"]

DEFAULT_SET = Path("benchmarks/heldout/multihop-v1.jsonl")
DEFAULT_VERIFICATION = Path("benchmarks/heldout/verification-multihop-v1.json")
KINDS = ("hop1", "hop2", "followup", "followup_other", "single")
TWO_HOP = ("hop1", "hop2")


@dataclass(frozen=True)
class ConversationRun:
    data: Path = DEFAULT_SET
    verification: Path = DEFAULT_VERIFICATION
    walker_diagnostic: bool = True  # also the walker alone on the two-hop items


def _turns(item: dict[str, Any]) -> list[Message]:
    if "turns" in item:
        return [dict(t) for t in item["turns"]]  # type: ignore[misc]
    return [{"role": "user", "content": item["question"]}]


def _item_row(
    item: dict[str, Any],
    backend: Backend,
    editor: KnowledgeEditor,
    known: dict[str, bool],
    walker_diagnostic: bool,
) -> dict[str, Any]:
    turns = _turns(item)
    start = time.perf_counter()
    reference = backend.chat(turns, max_tokens=EditorParams().max_tokens)
    ref_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    answer = editor.chat(turns)
    ms = (time.perf_counter() - start) * 1000
    row: dict[str, Any] = {
        "id": item["id"],
        "kind": item["kind"],
        "asked": turns[-1]["content"],
        "expected": item["answer"],
        "known": known.get(item["id"]),
        "reference": reference,
        "reference_ms": round(ref_ms, 1),
        "text": answer.text,
        "route": answer.route,
        "edits": answer.edit_ids,
        "read_as": answer.question,
        "hops": [
            {"question": h.question, "answer": h.answer, "source": h.source} for h in answer.hops
        ],
        "latency_ms": round(ms, 1),
    }
    if walker_diagnostic and item["kind"] in TWO_HOP and editor.multihop is not None:
        walked = editor.multihop.answer(item["question"], fallback=False)
        row["walker_alone"] = {"text": walked.text, "chain": list(walked.chain)}
    return row


def run_conversations(
    items: Sequence[dict[str, Any]],
    settings: Settings,
    backend: Backend,
    memory: EditMemory,
    run: ConversationRun,
    known: dict[str, bool],
) -> Iterator[dict[str, Any]]:
    """Each item with its edits stored alone (undone afterwards), one row per item. One
    editor serves the run, as one ``kme chat`` session or proxy serves many questions
    (it reads the store as it is at each question)."""
    editor = KnowledgeEditor.from_settings(settings, memory, backend=backend)
    for item in items:
        memory.add_many([parse_edit(e) for e in item["edits"]])
        try:
            yield _item_row(item, backend, editor, known, run.walker_diagnostic)
        finally:
            memory.undo()


def bench_conversations(settings: Settings, run: ConversationRun, out: Path) -> dict[str, Any]:
    """Run the set on a fresh scratch store and write ``out`` and its rows."""
    from kme_rag.backends import make_backend
    from kme_rag.bench.output import CaseRows, write_result
    from kme_rag.memory.store import EditMemory

    items = [json.loads(line) for line in run.data.read_text(encoding="utf-8").splitlines() if line]
    verified = json.loads(run.verification.read_text(encoding="utf-8"))
    known = {r["id"]: bool(r["known"]) for r in verified["rows"]}
    scratch = settings.model_copy(
        update={"store": Path(tempfile.mkdtemp(prefix="kme-conversations-")), "chroma_url": None}
    )
    backend = make_backend(scratch)
    memory = EditMemory.open(scratch)
    start = time.perf_counter()
    with CaseRows(out, len(items), desc="conversations") as table:
        rows = table.extend(run_conversations(items, scratch, backend, memory, run, known))
    summary = {
        "kind": "conversations",
        "dataset": run.data.name,
        "dataset_sha256": sha256_of(run.data),
        "method": "kme",
        "model": backend.name,
        "edits_mode": "one",
        "max_tokens": EditorParams().max_tokens,
        "seconds": round(time.perf_counter() - start, 1),
        **summarise_conversations(rows),
    }
    return write_result(out, summary, table)


def summarise_conversations(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The figures of :func:`run_conversations` rows (see the module docstring)."""

    def of(kind: str) -> list[dict[str, Any]]:
        return [r for r in rows if r["kind"] == kind]

    def correct(group: Sequence[dict[str, Any]], key: str = "text") -> dict[str, Any]:
        hits = sum(contains_answer(str(r[key] or ""), r["expected"]) for r in group)
        return _rate(hits, len(group))

    figures: dict[str, Any] = {}
    for kind in TWO_HOP:
        every = of(kind)
        verified = [r for r in every if r["known"]]
        figures[f"{kind}_known"] = correct(verified)
        figures[f"{kind}_all"] = correct(every)
        alone = [{**r, "alone": r["walker_alone"]["text"]} for r in verified if "walker_alone" in r]
        if alone:
            figures[f"{kind}_known_walker_alone_diagnostic"] = correct(alone, "alone")
    follow = of("followup")
    figures["followup"] = correct(follow)
    figures["followup_resolved"] = _rate(sum(bool(r["read_as"]) for r in follow), len(follow))
    for kind in ("followup_other", "single"):
        group = of(kind)
        figures[f"{kind}_kept"] = _rate(sum(r["text"] == r["reference"] for r in group), len(group))
    single = of("single")
    figures["single_walked_by_mistake"] = _rate(
        sum(r["route"] == "multihop" for r in single), len(single)
    )
    passed = [r for r in rows if r["route"] == "passthrough"]
    worded = [r for r in passed if looks_composed(r["read_as"] or r["asked"])]
    plain = [r for r in passed if r not in worded]
    return {
        "figures": figures,
        "routes": {kind: dict(Counter(r["route"] for r in of(kind))) for kind in KINDS},
        "counts": {kind: len(of(kind)) for kind in KINDS},
        "latency_ms": {
            **_ratio("passthrough", passed),
            **_ratio("passthrough_plain", plain),
            **_ratio("passthrough_worded", worded),
            "p50": _percentile([r["latency_ms"] for r in rows], 0.5),
        },
    }


def _ratio(name: str, group: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """p50 of the editor's and the unedited model's latency on ``group``, and their ratio."""
    edited = _percentile([r["latency_ms"] for r in group], 0.5)
    base = _percentile([r["reference_ms"] for r in group], 0.5)
    ratio = round(edited / base, 3) if edited and base else None
    return {f"{name}_p50": edited, f"{name}_unedited_p50": base, f"{name}_ratio_p50": ratio,
            f"{name}_n": len(group)}  # fmt: skip
