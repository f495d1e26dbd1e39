"""Measuring a scope model on held-out CounterFact-format edits (``kme scope eval``).

``edits`` records are stored at once; the first ``queries`` of them are asked about.
Their prompts and paraphrases are in scope: recall counts the query's own edit (or the
later edit that superseded it) judged in scope. Their neighbourhood prompts and the
unrelated questions are out of scope: specificity counts queries with no edit judged in
scope. A neighbourhood prompt that names another *stored* edit's subject with that
edit's relation is in scope of it (CounterFact's neighbours are real entities, and
sometimes another case edits them): such conflicts are counted and left out of
specificity, as they would be wrong to count either way.

Each query goes through the same candidate retrieval as the editor
(:meth:`EditMemory.candidates`); the scope decision's latency is timed on its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kme_rag.bench.harness import casual, other_relations
from kme_rag.errors import ValidationError
from kme_rag.memory.edit import Edit
from kme_rag.memory.formats import counterfact_edit
from kme_rag.memory.mention import find_mention
from kme_rag.memory.store import EditMemory, SearchHit
from kme_rag.scope.base import ScopeModel
from kme_rag.scope.data import relation_groups

if TYPE_CHECKING:
    from kme_rag.settings import Settings

__all__ = [
    "ScopeEvalParams",
    "ScopeQuery",
    "evaluate_scope",
    "run_scope_eval",
    "scope_queries",
]


@dataclass(frozen=True)
class ScopeQuery:
    """A query, the edit it is in scope of (None: out of scope), and where it came from."""

    text: str
    edit_id: str | None
    kind: str


def scope_queries(
    records: Sequence[dict[str, Any]],
    edits: Sequence[Edit],
    n: int,
    unrelated: Sequence[str],
) -> tuple[list[ScopeQuery], int]:
    """The queries about the first ``n`` records, and how many neighbourhood prompts were
    left out as conflicts with a stored edit of the same relation."""
    groups = relation_groups(records)
    group_of = {e.id: groups.get(e.prompt or "") for e in edits}
    by_first_token: dict[str, list[Edit]] = {}
    for edit in edits:
        assert edit.subject
        by_first_token.setdefault(edit.subject.split()[0].casefold(), []).append(edit)
    by_group: dict[int, list[str]] = {}
    for template, group in sorted(groups.items()):
        by_group.setdefault(group, []).append(template)
    queries, conflicts = [], 0
    for index, (record, edit) in enumerate(zip(records[:n], edits[:n], strict=True)):
        queries += [
            ScopeQuery(record["prompt"], edit.id, "prompt"),
            ScopeQuery(record["rephrase_prompt"], edit.id, "rephrase"),
            ScopeQuery(casual(record["rephrase_prompt"]), edit.id, "casual"),
        ]
        assert edit.subject
        for template in other_relations(by_group, group_of[edit.id], index):
            queries.append(ScopeQuery(template.format(edit.subject), None, "same-subject"))
        neighbour = record["locality_prompt"]
        words = {w.casefold() for w in neighbour.split()}
        named = [e for w in words for e in by_first_token.get(w.strip(",.?'\""), [])]
        if any(
            e.id != edit.id
            and group_of[e.id] == group_of[edit.id]
            and find_mention(neighbour, [e.subject or ""]).exact
            for e in named
        ):
            conflicts += 1
            continue
        queries.append(ScopeQuery(neighbour, None, "neighbourhood"))
    queries += [ScopeQuery(q, None, "unrelated") for q in unrelated]
    return queries, conflicts


def _decisions(
    memory: EditMemory, models: Sequence[ScopeModel], queries: Sequence[ScopeQuery], k: int
) -> Iterator[tuple[ScopeQuery, list[SearchHit], list[tuple[list[str], float]], float]]:
    for query in queries:
        start = time.perf_counter()
        hits = memory.candidates(query.text, k=k)
        retrieve_ms = (time.perf_counter() - start) * 1000
        out = []
        for model in models:
            start = time.perf_counter()
            decision = model.decide(query.text, hits)
            ms = (time.perf_counter() - start) * 1000
            out.append(([e.id for e in decision.in_scope], ms))
        yield query, hits, out, retrieve_ms


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": round(float(np.percentile(values, 50)), 2),
        "p95": round(float(np.percentile(values, 95)), 2),
    }


def evaluate_scope(
    memory: EditMemory,
    records: Sequence[dict[str, Any]],
    models: Sequence[ScopeModel],
    *,
    queries: int,
    unrelated: Sequence[str],
    k: int = 4,
    progress: Any = None,
) -> dict[str, Any]:
    """Store every record as an edit, ask the queries, and score each model."""
    edits = [
        counterfact_edit(r, "eval").model_copy(update={"id": f"cf-{r['case_id']}"}) for r in records
    ]
    memory.add_many(edits)
    key_of = {e.id: e.key for e in edits}
    asked, conflicts = scope_queries(records, edits, queries, unrelated)
    tallies: list[dict[str, Any]] = [
        {
            "tp": 0,
            "fn": 0,
            "tn": 0,
            "fp": 0,
            "top1": 0,
            "ms": [],
            "misses": [],
            "false": [],
            "by_kind": {},
        }
        for _ in models
    ]
    retrieval_ms, retrieved = [], 0
    for query, hits, decided, ms in _decisions(memory, models, asked, k):
        retrieval_ms.append(ms)
        if query.edit_id is not None:
            retrieved += any(h.edit.key == key_of[query.edit_id] for h in hits)
        for tally, (chosen, decide_ms) in zip(tallies, decided, strict=True):
            tally["ms"].append(decide_ms)
            if query.edit_id is not None:
                # A later record with the same (subject, relation) supersedes the
                # query's own edit: the edit now holding that key is the right answer.
                own = key_of[query.edit_id]
                hit = any(key_of[i] == own for i in chosen)
                tally["tp" if hit else "fn"] += 1
                kind = tally["by_kind"].setdefault(query.kind, [0, 0])
                kind[0], kind[1] = kind[0] + hit, kind[1] + 1
                tally["top1"] += bool(chosen) and key_of[chosen[0]] == own
                if not hit and len(tally["misses"]) < 20:
                    tally["misses"].append(query.text)
            else:
                tally["fp" if chosen else "tn"] += 1
                kind = tally["by_kind"].setdefault(query.kind, [0, 0])
                kind[0], kind[1] = kind[0] + (not chosen), kind[1] + 1
                if chosen and len(tally["false"]) < 20:
                    tally["false"].append([query.text, chosen[0]])
        if progress is not None:
            progress(1)
    n_in = sum(q.edit_id is not None for q in asked)
    results: dict[str, Any] = {}
    for model, tally in zip(models, tallies, strict=True):
        results[model.name] = {
            "recall": round(tally["tp"] / max(1, n_in), 4),
            "specificity": round(tally["tn"] / max(1, tally["tn"] + tally["fp"]), 4),
            "top1": round(tally["top1"] / max(1, n_in), 4),
            # recall for in-scope kinds, specificity for out-of-scope ones
            "by_kind": {
                kind: {"rate": round(k / max(1, n), 4), "n": n}
                for kind, (k, n) in sorted(tally["by_kind"].items())
            },
            "threshold": getattr(model, "threshold", None),
            "latency_ms": _percentiles(tally["ms"]),
            "missed_examples": tally["misses"],
            "false_positive_examples": tally["false"],
        }
    return {
        "n_edits": len(edits),
        "n_in": n_in,
        "n_out": len(asked) - n_in,
        "n_out_by_kind": {
            kind: sum(q.kind == kind for q in asked)
            for kind in ("neighbourhood", "unrelated", "same-subject")
        },
        "conflicts_excluded": conflicts,
        "k": k,
        "retrieval_recall": round(retrieved / max(1, n_in), 4),
        "retrieval_ms": _percentiles(retrieval_ms),
        "models": results,
    }


@dataclass(frozen=True, kw_only=True)
class ScopeEvalParams:
    """``kme scope eval``: which records, how many stored and asked, which weights."""

    data: Path | None = None  # CounterFact-format file [the evaluation split]
    edits: int = 1000  # records stored as edits
    queries: int = 1000  # of the stored edits asked about
    unrelated: int = 500  # unrelated questions (zsRE evaluation loc)
    k: int = 4  # nearest edits retrieved per search
    weights: Path | None = None  # scope weights [the shipped ones]


def run_scope_eval(settings: Settings, params: ScopeEvalParams, out: Path | None) -> dict[str, Any]:
    """Measure the trained scope and the similarity baseline on a scratch store; write
    the full result to ``out`` (when given); return the summary."""
    import json
    import sys
    import tempfile

    from tqdm import tqdm

    from kme_rag.bench.output import write_result
    from kme_rag.scope.classifier import ScopeWeights, TrainedScope
    from kme_rag.scope.similarity import SimilarityScope

    path = params.data or settings.data_dir / "counterfact" / "counterfact-edit.json"
    if not path.is_file():
        raise ValidationError(f"expected a CounterFact-format file, got {str(path)!r}")
    if not 1 <= params.queries <= params.edits:
        raise ValidationError(
            f"expected 1 <= --queries <= --edits, got {params.queries} and {params.edits}"
        )
    records = json.loads(path.read_text())[: params.edits]
    zsre = settings.data_dir / "zsre" / "zsre_mend_train-1k.json"
    loc = [r["loc"].removeprefix("nq question: ") for r in json.loads(zsre.read_text())[500:]]
    store = Path(tempfile.mkdtemp(prefix="kme-scope-eval-"))
    memory = EditMemory.open(settings.model_copy(update={"store": store, "chroma_url": None}))
    loaded = ScopeWeights.load(params.weights) if params.weights else ScopeWeights.load()
    models: list[ScopeModel] = [TrainedScope(memory.embedder, loaded), SimilarityScope()]
    total = 5 * min(params.queries, len(records)) + params.queries + params.unrelated
    with tqdm(total=total, unit="query", file=sys.stderr, desc="scope eval") as bar:
        result = evaluate_scope(
            memory,
            records,
            models,
            queries=params.queries,
            unrelated=loc[: params.unrelated],
            k=params.k,
            progress=bar.update,
        )
    main = result["models"]["classifier"]
    keys = ("recall", "specificity", "by_kind", "threshold", "latency_ms")
    summary = {
        **{key: main[key] for key in keys},
        "n_in": result["n_in"],
        "n_out": result["n_out"],
        "baseline": {key: result["models"]["similarity"][key] for key in keys},
    }
    if out is not None:
        write_result(out, {**summary, **result, "data": str(path)})
    return summary
