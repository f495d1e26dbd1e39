"""Confidence intervals and the survey's sequential-editing equations, as pure functions.

- :func:`wilson`: the Wilson score interval for a proportion k/n (95% by default), which
  stays inside [0, 1] and is sensible at k = 0 or k = n, unlike the normal approximation.
- :func:`newcombe_difference`: the interval for a difference of two independent
  proportions p2 - p1 from the two Wilson intervals (Newcombe 1998, method 10).
- :func:`retainability`: the mean per-edit change in accuracy as edits arrive one by one
  (the survey's Eq. 12, signed so that forgetting is negative).
- :func:`scalability`: accuracy with N edits stored, relative to accuracy with one
  (the survey's Eq. 13/14, as the report uses them).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from kme_rag.errors import ValidationError

__all__ = [
    "Z95",
    "Interval",
    "newcombe_difference",
    "retainability",
    "scalability",
    "wilson",
]

Z95 = 1.959963984540054  # the two-sided 95% normal quantile


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval (``low <= value <= high``)."""

    value: float
    low: float
    high: float

    def scaled(self, factor: float) -> Interval:
        """The same interval multiplied by ``factor`` (> 0), e.g. per edit."""
        return Interval(self.value * factor, self.low * factor, self.high * factor)


def _check_count(k: int, n: int) -> None:
    if n < 0 or not 0 <= k <= max(n, 0):
        raise ValidationError(f"expected 0 <= k <= n, got k={k}, n={n}")


def wilson(k: int, n: int, z: float = Z95) -> Interval:
    """The Wilson score interval of k successes in n trials; n = 0 gives [0, 1]."""
    _check_count(k, n)
    if n == 0:
        return Interval(0.0, 0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def newcombe_difference(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> Interval:
    """The difference p2 - p1 of two independent proportions with Newcombe's hybrid
    score interval (Wilson bounds l, u of each): with d = p2 - p1, from
    ``d - sqrt((p2-l2)^2 + (u1-p1)^2)`` to ``d + sqrt((u2-p2)^2 + (p1-l1)^2)``."""
    if n1 == 0 or n2 == 0:
        raise ValidationError(f"expected two non-empty samples, got n1={n1}, n2={n2}")
    a, b = wilson(k1, n1, z), wilson(k2, n2, z)
    d = b.value - a.value
    low = d - math.sqrt((b.value - b.low) ** 2 + (a.high - a.value) ** 2)
    high = d + math.sqrt((b.high - b.value) ** 2 + (a.value - a.low) ** 2)
    return Interval(d, low, high)


def retainability(accuracies: Sequence[float]) -> float:
    """Eq. 12: ``1/(N-1) * sum_{n=1}^{N-1} (Acc(n+1) - Acc(n))`` for the accuracies
    after 1, 2, …, N edits; negative means earlier edits are forgotten. The sum
    telescopes to ``(Acc(N) - Acc(1)) / (N - 1)``, which is why accuracies measured at
    checkpoints on one fixed probe set estimate it."""
    if len(accuracies) < 2:
        raise ValidationError(f"expected accuracies after at least 2 edits, got {len(accuracies)}")
    steps = [b - a for a, b in itertools.pairwise(accuracies)]
    return sum(steps) / len(steps)


def scalability(accuracy_by_edits: dict[int, float]) -> dict[int, float]:
    """Eq. 13/14 as used here: for each number N of edits stored, accuracy with N
    stored minus accuracy with the fewest stored (0 means no decay with scale)."""
    if not accuracy_by_edits:
        raise ValidationError("expected accuracies for at least one store size")
    base = accuracy_by_edits[min(accuracy_by_edits)]
    return {n: acc - base for n, acc in sorted(accuracy_by_edits.items())}
