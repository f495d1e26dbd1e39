"""``kme bench mquake``: the unedited model, MeLLo, or the graph walk on MQuAKE cases.

Builds the answering function for a method, runs :func:`~.evaluate.run_mquake`, probes
which unedited hops of each new chain the model knows, and writes the summary JSON
(harness schema) and a per-case JSONL beside it.

``kme+weights`` is the walk (``kme``) on the local weights after every case's edits were
written into them in one MEMIT batch: the walk still reads the edited hops from the
memory, and asks the *edited* weights every other hop (and the hop probes), so it shows
what consolidating the memory into the weights costs the unedited knowledge a multi-hop
answer needs.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from kme_rag.backends import Backend, make_backend, qa_prompt
from kme_rag.bench.mquake_metrics import (
    Answerer,
    EditsAs,
    Hop,
    MquakeCase,
    known_hops,
    load_mquake,
    run_mquake,
    store_cases,
    summarise_mquake,
)
from kme_rag.bench.output import CaseRows, write_result
from kme_rag.editor import KnowledgeEditor
from kme_rag.errors import ValidationError
from kme_rag.memory.edit import Edit, parse_edit
from kme_rag.memory.graph import FactGraph
from kme_rag.memory.store import EditMemory
from kme_rag.multihop.hops import RelationPrompts, ask_hop
from kme_rag.multihop.mello import load_prompt, mello_answerer
from kme_rag.multihop.walk import GraphWalker, build_walker
from kme_rag.multihop.walk import Hop as WalkedHop
from kme_rag.settings import Settings

__all__ = [
    "Method",
    "bench_mquake",
    "known_facts",
    "load_cases",
]

Method = Literal["none", "mello", "kme", "walker", "kme+weights"]
# How each method's answers were made: ``kme`` as ``kme ask`` answers (the editor's plan,
# the walk one of its routes); ``walker`` the graph walk called on its own, a diagnostic
PATHS = {
    "kme": "editor (as kme ask)",
    "walker": "walker alone (diagnostic)",
    "kme+weights": "walker alone on the edited weights (diagnostic)",
}
LOOSE = "loose (stop also at the next 'Question:', 'Final answer:' on any line)"


def known_facts(path: Path, n: int | None = None) -> list[Edit]:
    """The *unedited* facts of MQuAKE cases as trusted facts: every triple of the
    original chains and every unedited triple of the new chains (never an edit)."""
    records = json.loads(path.read_text(encoding="utf-8"))[:n]
    seen: set[tuple[str, str]] = set()
    facts = []
    for record in records:
        orig = record["orig"]
        edited = {tuple(t) for t in orig.get("edit_triples", [])}
        pairs = list(zip(orig["triples"], orig["triples_labeled"], strict=True))
        pairs += list(zip(orig["new_triples"], orig["new_triples_labeled"], strict=True))
        for ids, labels in pairs:
            if tuple(ids) in edited or (ids[0], ids[1]) in seen:
                continue
            seen.add((ids[0], ids[1]))
            facts.append(
                parse_edit(
                    {
                        "subject": labels[0],
                        "relation": labels[1],
                        "relation_id": ids[1],
                        "target_new": labels[2],
                        "source": f"known:{path.name}#{record['case_id']}",
                    }
                )
            )
    return facts


def _hop_rows(hops: Sequence[WalkedHop]) -> list[dict[str, str]]:
    """A walk's hops as the rows record them (``kind``: edit, known or model)."""
    return [
        {"question": h.question, "answer": h.answer, "source": h.origin, "kind": h.source}
        for h in hops
    ]


def _walk_answerer(walker: GraphWalker) -> Answerer:
    def answer(question: str) -> tuple[str | None, dict[str, Any]]:
        result = walker.answer(question)
        return result.text, {
            "route": result.method,
            "subject": result.subject,
            "chain": list(result.chain),
            "chain_score": round(result.chain_score, 4),
            "hops": _hop_rows(result.hops),
        }

    return answer


def _editor_answerer(editor: KnowledgeEditor) -> Answerer:
    """Questions answered as ``kme ask`` answers them: the editor's plan and its route."""

    def answer(question: str) -> tuple[str | None, dict[str, Any]]:
        result = editor.ask(question)
        return result.text, {
            "route": result.route,
            "edits": result.edit_ids,
            "hops": _hop_rows(result.hops),
        }

    return answer


def _plain_answerer(backend: Backend) -> Answerer:
    def answer(question: str) -> tuple[str | None, dict[str, Any]]:
        prompt = qa_prompt([{"role": "user", "content": question}])
        return backend.complete(prompt, max_tokens=16, stop=("\n",)), {}

    return answer


def _hop_sources(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {"edit": 0, "known": 0, "model": 0}
    for row in rows:
        for question in row["questions"]:
            for hop in question.get("hops", []):
                counts[hop["kind"]] += 1
    return counts


def _consolidate(weights: Any, memory: EditMemory) -> dict[str, Any]:
    """Write the memory's active edits (one per fact: the newest where cases disagree) into
    the weights in one MEMIT batch; return the summary's fields about it."""
    start = time.perf_counter()
    (record,) = weights.write(memory.graph.edits(), "memit")
    seconds = time.perf_counter() - start
    return {
        "edits_written": len(record.edit_ids),
        "edit_seconds": {
            "batch": round(seconds, 2),
            "per_edit": round(seconds / len(record.edit_ids), 3),
        },
        "target_cache": dataclasses.asdict(weights.target_counts),
        "hops_probed_on": "the edited weights",
    }


def bench_mquake(
    settings: Settings,
    method: Method,
    cases: Sequence[MquakeCase],
    edits: Literal["one", "all"],
    out: Path,
    *,
    dataset: str,
    known_path: Path | None = None,
    provenance: dict[str, Any] | None = None,
    progress: bool = True,
    weights: Any | None = None,
    edits_as: EditsAs = "structured",
    single_hop: bool = False,
) -> dict[str, Any]:
    """Run one method on ``cases`` and write ``out`` (+ ``.cases.jsonl``); returns the
    summary. ``known_path`` turns on known-facts mode (labelled in the summary);
    ``weights``: the WeightEditor ``kme+weights`` writes into (default: the settings'
    model on scratch deltas). ``edits_as="passage"`` stores each edit only as AKEW's
    passage (:func:`store_cases`); ``single_hop`` also asks the edited hops alone."""
    from tqdm import tqdm

    if method == "kme+weights" and edits != "all":
        raise ValidationError("expected --edits all with --method kme+weights")
    # MeLLo resends a ~900-token prompt each round, the walk a few-shot block per hop:
    # both reuse llama.cpp's KV cache of the shared prefix (faster, not bit-reproducible).
    reuse = method in ("mello", "kme", "walker")
    if method == "kme+weights":
        if weights is None:
            from kme_rag.whitebox.session import WeightEditor

            weights = WeightEditor.open_scratch(settings)
        backend: Backend = weights.backend
    else:
        backend = make_backend(settings, reuse_prefix=reuse)
    memory = None
    consolidated: dict[str, Any] = {}
    if method == "none":
        answer = _plain_answerer(backend)
    else:
        store = Path(tempfile.mkdtemp(prefix="kme-bench-"))
        memory = EditMemory.open(settings.model_copy(update={"store": store, "chroma_url": None}))
        if method == "mello":
            answer = mello_answerer(backend, memory, load_prompt(settings.data_dir))
        else:
            known = FactGraph(known_facts(known_path, len(cases))) if known_path else None
            walker = build_walker(settings, backend, memory, known)
            answer = _walk_answerer(walker)
            if method == "kme":  # KnowledgeEditor.from_settings's editor, on this walk
                answer = _editor_answerer(KnowledgeEditor(backend, memory, multihop=walker))
            if edits == "all":  # the relations of every stored edit, once stored
                store_cases(memory, cases, edits_as)
                walker.bank.add_edits(memory.graph.edits())
            if weights is not None:
                consolidated = _consolidate(weights, memory)
    relations = RelationPrompts.load(settings.data_dir)

    def probe(hop: Hop) -> str:
        return ask_hop(backend, relations, hop.relation_id, hop.question)

    rows = []
    walks = method in ("kme", "walker", "kme+weights")
    stored = memory if not walks or edits == "one" else None  # the walk, all: stored above
    bar = tqdm(total=len(cases), unit="case", file=sys.stderr, desc="asking", disable=not progress)
    with bar:
        each = run_mquake(
            cases, answer, stored, edits_mode=edits, edits_as=edits_as, single_hop=single_hop
        )
        for row in each:
            rows.append(row)
            bar.update(1)
    probed = tqdm(cases, unit="case", file=sys.stderr, desc="probing hops", disable=not progress)
    known_rows = [known_hops([case], probe)[0] for case in probed]
    with CaseRows(out, bar=False) as table:
        for row, hops in zip(rows, known_rows, strict=True):
            table.write({**row, "unedited_hops_known": hops})
    summary: dict[str, Any] = {
        "dataset": f"mquake:{dataset}",
        "method": method,
        **({"path": PATHS[method]} if method in PATHS else {}),
        "mode": "known facts (trusted unedited facts imported)" if known_path else "plain",
        "model": backend.name,
        "n": len(rows),
        "edits_mode": edits,
        "edits_as": edits_as,
        "llama_reuse_prefix": reuse,
        **summarise_mquake(cases, rows, known_rows),
        **(provenance or {}),
    }
    if method == "mello":
        asked = [q for r in rows for q in r["questions"]]
        checks = [(q["contradicts"], q["does_not_contradict"]) for q in asked]
        summary["mello_checks"] = {
            "contradicts": sum(c for c, _ in checks),
            "does_not_contradict": sum(d for _, d in checks),
            "loop": LOOSE,
        }
    summary.update(consolidated)
    if walks:
        routes = [q["route"] for r in rows for q in r["questions"]]
        summary["routes"] = {k: routes.count(k) for k in sorted(set(routes))}
        summary["hop_sources"] = _hop_sources(rows)
        if known_path:
            summary["known_facts_file"] = known_path.name
    return write_result(out, summary, table)


def load_cases(
    settings: Settings, data: Path | None, n: int | None
) -> tuple[Path, list[MquakeCase]]:
    """The cases of ``data`` (default: MQuAKE-CF-3k subset), the first ``n``."""
    path = data or settings.data_dir / "mquake" / "MQuAKE-CF-3k-subset354.json"
    return path, load_mquake(path, n)
