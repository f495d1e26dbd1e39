"""``kme bench scalability|retainability``: a curve run of one method on CounterFact's
evaluation split (the memory route; for retainability also ROME or MEMIT writing each
edit into the weights), written as a summary JSON plus per-case rows beside it."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from kme_rag.backends import make_backend
from kme_rag.bench.curves import CurveParams, run_retainability, run_scalability
from kme_rag.bench.harness import Case, build_editor, counterfact_cases
from kme_rag.bench.memory_weights import weights_editor
from kme_rag.bench.output import CaseRows, write_result
from kme_rag.editor import KnowledgeEditor
from kme_rag.errors import ValidationError
from kme_rag.memory.store import EditMemory
from kme_rag.settings import Settings

__all__ = ["CurveKind", "CurveMethod", "bench_curve"]

log = logging.getLogger(__name__)

CurveKind = Literal["scalability", "retainability"]
CurveMethod = Literal["kme", "rome", "memit"]
DEFINITIONS = {
    "scalability": "first N edits of counterfact-edit.json stored (one growing store); "
    "the first min(N, probe_n) cases asked prompt, paraphrase and neighbourhood",
    "retainability": "edits applied one at a time (one memory change or weight write "
    "each); at each checkpoint c the oldest min(c, probe_n) edits asked again; Eq. 12 "
    "estimated between the first and last checkpoint with the full probe set",
}


def _editor(
    settings: Settings, method: CurveMethod, max_tokens: int, weights: Any | None = None
) -> tuple[KnowledgeEditor, Callable[[Case], object] | None]:
    """The editor a curve asks through and how one edit is applied (None: memory add)."""
    store = Path(tempfile.mkdtemp(prefix="kme-curve-"))
    memory = EditMemory.open(settings.model_copy(update={"store": store, "chroma_url": None}))
    if method == "kme":
        backend = make_backend(settings)
        editor = build_editor("kme", backend, memory, settings.data_dir, max_tokens=max_tokens)
        assert editor is not None  # "kme" always builds an editor
        return editor, None
    if weights is None:
        from kme_rag.whitebox.session import WeightEditor

        weights = WeightEditor.open_scratch(settings)

    def write(case: Case) -> object:
        return weights.write([case.edit], method)

    return weights_editor(weights, memory, max_tokens), write


def bench_curve(
    settings: Settings,
    kind: CurveKind,
    params: CurveParams,
    out: Path,
    provenance: dict[str, Any],
    method: CurveMethod = "kme",
    weights: Any | None = None,
) -> dict[str, Any]:
    """Run ``method`` — ``kme`` (trained scope + IKE with the new object prefilled;
    clozes never reach the multi-hop walk), or ``rome`` / ``memit`` writing each edit
    into the weights in turn (retainability only) — and write ``out`` and its rows."""
    if kind == "scalability" and method != "kme":
        raise ValidationError(f"expected --method kme for scalability, got {method!r}")
    path = settings.data_dir / "counterfact" / "counterfact-edit.json"
    cases = counterfact_cases(path, params.sizes[-1])
    editor, apply = _editor(settings, method, params.max_tokens, weights)
    backend = editor.backend
    points = []
    with CaseRows(out, bar=False) as table:
        points_iter = (
            run_scalability(editor, cases, params, log.info)
            if kind == "scalability"
            else run_retainability(editor, cases, params, log.info, apply)
        )
        for point in points_iter:
            size = point.get("edits_stored", point.get("edits_applied"))
            for row in point.pop("rows"):
                table.write({"size": size, **row})
            points.append(point)
    summary: dict[str, Any] = {
        "kind": kind,
        "dataset": "counterfact",
        "method": method,
        "model": backend.name,
        "definition": DEFINITIONS[kind],
        "sizes": list(params.sizes),
        "probe_n": params.probe_n,
        "points": points,
        **provenance,
    }
    return write_result(out, summary, table)
