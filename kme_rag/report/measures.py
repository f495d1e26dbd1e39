"""Figures derived from the results: Eq. 12 estimates and the issue's target checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kme_rag.report.intervals import Interval, newcombe_difference
from kme_rag.report.results import Result

__all__ = ["PerEdit", "retainability_estimates", "rome_retainability"]

METRICS = {"efficacy": "efficacy", "generality": "generality", "locality": "locality_same"}


@dataclass(frozen=True)
class PerEdit:
    """Eq. 12 estimated between two checkpoints: the change per edit, with its interval."""

    metric: str
    first: int  # edits applied at the first checkpoint used
    last: int
    per_edit: Interval


def _per_edit(metric: str, a: tuple[int, int, int], b: tuple[int, int, int]) -> PerEdit:
    """``a``/``b``: (edits applied, successes, probed) at the two checkpoints."""
    diff = newcombe_difference(a[1], a[2], b[1], b[2])
    return PerEdit(metric, a[0], b[0], diff.scaled(1 / (b[0] - a[0])))


def retainability_estimates(result: Result) -> list[PerEdit]:
    """Per-edit change of each metric between the first and last checkpoint of a
    retainability run that probe the full (fixed) probe set; [] when fewer than two
    such checkpoints exist."""
    fixed = [p for p in result.data["points"] if p.get("fixed_probe_set")]
    if len(fixed) < 2:
        return []
    first, last = fixed[0], fixed[-1]

    def at(p: dict[str, Any], key: str) -> tuple[int, int, int]:
        return int(p["edits_applied"]), int(p["counts"][key]), int(p["counts"]["cases"])

    return [_per_edit(m, at(first, k), at(last, k)) for m, k in METRICS.items()]


def rome_retainability(result: Result) -> list[PerEdit]:
    """The same from sequential ROME's checkpoints (probability scores of the first
    edits); the first checkpoint probing as many edits as the last one is the base."""
    decay = result.data.get("decay") or []
    if len(decay) < 2:
        return []
    last = decay[-1]
    first = next(c for c in decay if c["probed"] == last["probed"])
    if first is last:
        return []

    def at(c: dict[str, Any], key: str) -> tuple[int, int, int]:
        n = int(c["probed"])
        return int(c["edits_applied"]), round(float(c[key]) * n), n

    keys = {"efficacy": "efficacy", "generality": "paraphrase", "locality": "neighbourhood"}
    return [_per_edit(m, at(first, k), at(last, k)) for m, k in keys.items()]
