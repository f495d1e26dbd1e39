"""``kme bench counterfact|zsre --method kme+weights``: memory consolidated into weights.

Definition (as the report states it): every case's edit is stored in the edit memory
*and* written into the local weights in one MEMIT batch (``WeightEditor.write(edits,
"memit")``); the editor runs with ``weights_policy="weights"``, so every single-hop
probe is answered by the consolidated weights (route ``weights``) while the memory stays
the source of truth (and is what the multi-hop walk reads). Locality compares with the
*unedited* weights' own answers, asked before the write in the same run.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kme_rag.bench.harness import Case, locality_conflicts, summarise
from kme_rag.bench.output import CaseRows, write_result
from kme_rag.bench.probes import edited_row, references
from kme_rag.editor import EditorParams, KnowledgeEditor
from kme_rag.memory.store import EditMemory
from kme_rag.settings import Settings

__all__ = ["bench_consolidated", "weights_editor"]


def weights_editor(weights: Any, memory: EditMemory, max_tokens: int) -> KnowledgeEditor:
    """An editor that answers every query from the (edited) weights: route ``weights``."""
    params = EditorParams(weights_policy="weights", max_tokens=max_tokens)
    return KnowledgeEditor(weights.backend, memory, weights=weights, params=params)


def bench_consolidated(
    settings: Settings,
    dataset: str,
    cases: Sequence[Case],
    out: Path,
    provenance: dict[str, Any],
    max_tokens: int = 16,
    weights: Any | None = None,
    generate_n: int | None = None,
) -> dict[str, Any]:
    """Run ``kme+weights`` on ``cases`` (all edits at once); write ``out`` and its rows.
    ``weights``: a WeightEditor to write into (default: the settings' model, scratch
    deltas); ``generate_n``: probe only the first that many cases (all are written)."""
    store = Path(tempfile.mkdtemp(prefix="kme-bench-"))
    memory = EditMemory.open(settings.model_copy(update={"store": store, "chroma_url": None}))
    if weights is None:
        from kme_rag.whitebox.session import WeightEditor

        weights = WeightEditor.open_scratch(settings)
    probed = list(cases[:generate_n] if generate_n is not None else cases)
    refs = references(weights.backend, probed, max_tokens)
    memory.add_many([c.edit for c in cases])
    start = time.perf_counter()
    weights.write([c.edit for c in cases], "memit")
    write_s = time.perf_counter() - start
    editor = weights_editor(weights, memory, max_tokens)
    conflicts = locality_conflicts(cases)
    with CaseRows(out, len(probed)) as table:
        rows = table.extend(edited_row(editor, c, refs[c.case_id], conflicts) for c in probed)
    summary = {
        "dataset": dataset,
        "method": "kme+weights",
        "model": weights.backend.name,
        "n": len(rows),
        "edits_written": len(cases),
        "edits_mode": "all",
        "definition": __doc__.split("\n\n")[1].replace("\n", " ") if __doc__ else "",
        "edit_seconds": {"batch": round(write_s, 2), "per_edit": round(write_s / len(cases), 3)},
        "target_cache": dataclasses.asdict(weights.target_counts),
        **summarise(rows),
        **provenance,
    }
    return write_result(out, summary, table)
