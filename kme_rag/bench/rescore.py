"""Score a result's stored answers again with today's answer matcher.

Every figure of REPORT.md must come from the same :func:`~kme_rag.matching.contains_answer`;
results written before it last changed were scored by an older one. Their rows file
(``<out>.cases.jsonl``) holds every answer the model gave, so the figures are recomputed
from it with the summariser that wrote them — nothing is asked again. The result keeps
what it measured at run time under ``metrics_as_run`` and records the rescoring
(``rescored``: date, command, the figures that moved).

What cannot be rescored is said: MQuAKE's known-hops probe kept only its verdicts, not
the probe answers, so ``unedited_hops_known`` stays as run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kme_rag.bench.harness import summarise
from kme_rag.bench.mquake_metrics import answered, load_mquake, summarise_mquake
from kme_rag.bench.natural import summarise_natural
from kme_rag.bench.output import cases_path
from kme_rag.bench.weights import summarise_weights

__all__ = ["rescore"]


def _rows(path: Path, result: dict[str, Any]) -> list[dict[str, Any]]:
    rows_file = path.parent / result.get("cases_file", cases_path(path).name)
    lines = rows_file.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _mquake(result: dict[str, Any], rows: list[dict[str, Any]], data_dir: Path) -> dict[str, Any]:
    name = str(result["dataset"]).removeprefix("mquake:")
    cases = {c.case_id: c for c in load_mquake(data_dir / "mquake" / name)}
    ordered = [cases[str(r["case_id"])] for r in rows]
    for row, case in zip(rows, ordered, strict=True):
        row["new_right"] = [answered(q["answer"], case.new_answers) for q in row["questions"]]
        row["original_right"] = [
            answered(q["answer"], case.original_answers) for q in row["questions"]
        ]
    known = (
        [r["unedited_hops_known"] for r in rows]
        if all("unedited_hops_known" in r for r in rows)
        else None
    )
    return summarise_mquake(ordered, rows, known)


def _curve(result: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A scalability or retainability curve: each point from its size's rows (and its
    ``active`` figures from those not superseded), written back into ``result``."""
    moved: dict[str, list[Any]] = {}
    for point in result["points"]:
        size = point.get("edits_applied", point.get("edits_stored"))
        at = [r for r in rows if r.get("size") == size]
        if not at:
            continue
        summary = summarise(at)
        superseded = set(point.get("superseded", ()))
        active = summarise([r for r in at if r["case_id"] not in superseded])
        moved |= {f"{size}:{k}": v for k, v in _moved(point["metrics"], summary["metrics"]).items()}
        point["metrics_as_run"] = point.get("metrics_as_run", point["metrics"])
        point["metrics"], point["counts"] = summary["metrics"], summary["counts"]
        if "active" in point:
            point["active"] = {k: active[k] for k in ("metrics", "counts")}
    return {"moved": moved}


def _summariser(result: dict[str, Any], data_dir: Path) -> Callable[[list[dict[str, Any]]], Any]:
    dataset = str(result.get("dataset", ""))
    if dataset.startswith("mquake:"):
        return lambda rows: _mquake(result, rows, data_dir)
    if dataset.startswith("natural"):
        return summarise_natural
    if "points" in result:
        return lambda rows: _curve(result, rows)
    if dataset in ("counterfact", "zsre"):
        # ROME/MEMIT runs score probabilities; kme+weights answers as the harness does
        return lambda rows: (summarise_weights if "probability" in rows[0] else summarise)(rows)
    raise ValueError(f"no summariser for a {dataset!r} result (method {result.get('method')!r})")


def _moved(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    return {
        key: [old[key], new[key]]
        for key in sorted(old.keys() & new.keys())
        if not isinstance(old[key], dict) and old[key] != new[key]
    }


def rescore(path: Path, data_dir: Path, *, command: str, write: bool = True) -> dict[str, Any]:
    """Rescore the result at ``path`` (its rows file beside it); returns the figures
    that moved (``{metric: [as run, rescored]}``), and with ``write`` updates the file."""
    result = json.loads(path.read_text(encoding="utf-8"))
    rows = _rows(path, result)
    summary = _summariser(result, data_dir)(rows)
    moved: dict[str, Any]
    if "points" in result:
        moved = summary["moved"]
        summary = {}
    else:
        as_run = result.get("metrics_as_run", result.get("metrics", {}))
        moved = _moved(as_run, summary.get("metrics", {}))
    if write:
        if "metrics" in result:
            result.setdefault("metrics_as_run", result["metrics"])
        for key in ("metrics", "counts"):
            if key in summary:
                result[key] = summary[key]
        result["rescored"] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": command,
            "note": "figures recomputed from the stored answers with today's matcher",
            "moved": moved,
        }
        path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return moved
