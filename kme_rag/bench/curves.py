"""The two sequential-editing measurements of the report, for a memory-based editor.

**Scalability** (:func:`run_scalability`): the first N edits of the evaluation file are
stored (N ascending, each step adding the next edits to the same store), and after each
step the first ``min(N, probe_n)`` cases — edits that are stored — are asked their
prompt, paraphrase and neighbourhood probes. The unedited answers are asked once.

**Retainability** (:func:`run_retainability`): edits arrive one at a time, each its own
change (``EditMemory.add``, or one ROME/MEMIT write into the weights); at each
checkpoint c the probe set — the first
``min(c, probe_n)`` edits, i.e. the *oldest* ones, those most exposed to interference —
is asked again. From checkpoint ``probe_n`` on the probe set is fixed, so the per-edit
change in accuracy between the first and the last such checkpoint estimates Eq. 12 (the
sum of per-edit changes telescopes); cost is bounded by checkpoints x probes, not by
edits².

Both yield plain dicts (one per store size / checkpoint) with the harness's summary
(:func:`kme_rag.bench.harness.summarise`) and the rows it was computed from.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kme_rag.bench.harness import PROBES, Case, summarise
from kme_rag.bench.probes import Reference, edited_row, references
from kme_rag.editor import KnowledgeEditor
from kme_rag.errors import ValidationError
from kme_rag.memory.store import EditMemory

__all__ = ["CurveParams", "run_retainability", "run_scalability", "stored_subject_conflicts"]


@dataclass(frozen=True, kw_only=True)
class CurveParams:
    """Sizes of a scalability or retainability run: ``sizes`` are store sizes
    (scalability) or checkpoints (retainability), ascending; ``probe_n`` caps the cases
    asked at each."""

    sizes: tuple[int, ...]
    probe_n: int
    max_tokens: int = 16

    def __post_init__(self) -> None:
        if not self.sizes or list(self.sizes) != sorted(set(self.sizes)) or self.sizes[0] < 1:
            raise ValidationError(f"expected ascending positive sizes, got {self.sizes}")
        if self.probe_n < 1:
            raise ValidationError(f"expected probe_n >= 1, got {self.probe_n}")


def stored_subject_conflicts(memory: EditMemory, cases: Sequence[Case]) -> set[str]:
    """Cases whose neighbourhood prompt names the subject of another *stored* edit (with
    that edit stored, the prompt is no longer unrelated); from the fact graph's mention
    index, never from the editor's decisions."""
    return {
        case.case_id
        for case in cases
        if any(e.id != case.edit.id for e in memory.graph.mentioned(case.locality))
    }


def _superseded(memory: EditMemory, cases: Sequence[Case]) -> list[str]:
    """Probed cases whose edit a later edit of the same (subject, relation) replaced."""
    return [c.case_id for c in cases if c.edit.id not in memory.graph]


def _point(
    editor: KnowledgeEditor,
    probed: Sequence[Case],
    refs: dict[str, dict[str, Reference]],
    probes: Sequence[str],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The harness summary of the probed cases, plus ``active``: the same over the cases
    whose edit is still the active one (a later edit of the same subject and relation
    supersedes it, and then the later object is the right answer)."""
    conflicts = stored_subject_conflicts(editor.memory, probed)
    rows = [edited_row(editor, c, refs[c.case_id], conflicts, probes) for c in probed]
    superseded = set(_superseded(editor.memory, probed))
    active = [r for r in rows if r["case_id"] not in superseded]
    summary = summarise(rows)
    summary["active"] = {k: summarise(active)[k] for k in ("metrics", "counts")}
    return summary, rows


def run_scalability(
    editor: KnowledgeEditor,
    cases: Sequence[Case],
    params: CurveParams,
    progress: Callable[[str], None] = lambda _: None,
) -> Iterator[dict[str, Any]]:
    """Store the first N of ``cases``' edits for each N in ``params.sizes`` and probe
    the first ``min(N, probe_n)``; yield one point per N (with ``rows``)."""
    if len(cases) < params.sizes[-1]:
        raise ValidationError(f"expected {params.sizes[-1]} cases, got {len(cases)}")
    probe_cases = list(cases[: params.probe_n])
    refs = references(editor.backend, probe_cases, params.max_tokens)
    stored = 0
    for size in params.sizes:
        progress(f"storing edits {stored + 1}-{size}")
        start = time.perf_counter()
        editor.memory.add_many([c.edit for c in cases[stored:size]])
        import_s = time.perf_counter() - start
        stored = size
        probed = probe_cases[: min(size, params.probe_n)]
        progress(f"probing {len(probed)} cases with {size} edits stored")
        summary, rows = _point(editor, probed, refs, PROBES)
        yield {
            "edits_stored": size,
            "probed": len(probed),
            "import_seconds": round(import_s, 2),
            "superseded": _superseded(editor.memory, probed),
            **summary,
            "rows": rows,
        }


def run_retainability(
    editor: KnowledgeEditor,
    cases: Sequence[Case],
    params: CurveParams,
    progress: Callable[[str], None] = lambda _: None,
    apply: Callable[[Case], object] | None = None,
) -> Iterator[dict[str, Any]]:
    """Apply ``cases``' edits one at a time (``apply``; default: ``EditMemory.add``, one
    change each); at each checkpoint probe the oldest ``min(c, probe_n)`` edits; yield
    one point per checkpoint (with ``rows`` and the seconds each apply took since the
    previous checkpoint)."""
    write = apply or (lambda case: editor.memory.add(case.edit))
    if len(cases) < params.sizes[-1]:
        raise ValidationError(f"expected {params.sizes[-1]} cases, got {len(cases)}")
    probe_cases = list(cases[: params.probe_n])
    refs = references(editor.backend, probe_cases, params.max_tokens)
    added = 0
    for checkpoint in params.sizes:
        seconds = []
        for case in cases[added:checkpoint]:
            start = time.perf_counter()
            write(case)
            seconds.append(round(time.perf_counter() - start, 4))
        added = checkpoint
        probed = probe_cases[: min(checkpoint, params.probe_n)]
        progress(f"checkpoint {checkpoint}: probing {len(probed)} oldest edits")
        summary, rows = _point(editor, probed, refs, PROBES)
        yield {
            "edits_applied": checkpoint,
            "probed": len(probed),
            "fixed_probe_set": checkpoint >= params.probe_n,
            "add_seconds": seconds,
            "superseded": _superseded(editor.memory, probed),
            **summary,
            "rows": rows,
        }
