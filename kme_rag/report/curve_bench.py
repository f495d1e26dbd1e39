"""``kme bench scalability|retainability``: a curve run of one memory-based method on
CounterFact's evaluation split, written as a summary JSON plus per-case rows beside it."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any, Literal

from kme_rag.backends import make_backend
from kme_rag.evaluation import build_editor, counterfact_cases
from kme_rag.memory.store import EditMemory
from kme_rag.report.curves import CurveParams, run_retainability, run_scalability
from kme_rag.settings import Settings

__all__ = ["CurveKind", "bench_curve"]

log = logging.getLogger(__name__)

CurveKind = Literal["scalability", "retainability"]
DEFINITIONS = {
    "scalability": "first N edits of counterfact-edit.json stored (one growing store); "
    "the first min(N, probe_n) cases asked prompt, paraphrase and neighbourhood",
    "retainability": "edits added one at a time (one change each); at each checkpoint c "
    "the oldest min(c, probe_n) edits asked again; Eq. 12 estimated between the first and "
    "last checkpoint with the full probe set",
}


def bench_curve(
    settings: Settings,
    kind: CurveKind,
    params: CurveParams,
    out: Path,
    provenance: dict[str, Any],
) -> dict[str, Any]:
    """Run the ``kme`` route (trained scope + IKE with the new object prefilled; clozes
    never reach the multi-hop walk) and write ``out`` and ``out.cases.jsonl``."""
    path = settings.data_dir / "counterfact" / "counterfact-edit.json"
    cases = counterfact_cases(path, params.sizes[-1])
    store = Path(tempfile.mkdtemp(prefix=f"kme-{kind}-"))
    memory = EditMemory.open(settings.model_copy(update={"store": store, "chroma_url": None}))
    backend = make_backend(settings)
    editor = build_editor("kme", backend, memory, settings.data_dir, max_tokens=params.max_tokens)
    assert editor is not None  # "kme" always builds an editor
    runner = run_scalability if kind == "scalability" else run_retainability
    out.parent.mkdir(parents=True, exist_ok=True)
    cases_path = out.with_suffix(".cases.jsonl")
    points = []
    with cases_path.open("w") as fh:
        for point in runner(editor, cases, params, log.info):
            size = point.get("edits_stored", point.get("edits_applied"))
            for row in point.pop("rows"):
                fh.write(json.dumps({"size": size, **row}, ensure_ascii=False) + "\n")
            points.append(point)
    summary: dict[str, Any] = {
        "kind": kind,
        "dataset": "counterfact",
        "method": "kme",
        "model": backend.name,
        "definition": DEFINITIONS[kind],
        "sizes": list(params.sizes),
        "probe_n": params.probe_n,
        "points": points,
        **provenance,
        "cases_file": cases_path.name,
    }
    out.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return summary
