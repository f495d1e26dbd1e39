"""Confidence intervals and the sequential-editing equations of the report."""

from __future__ import annotations

import pytest

from kme_rag.errors import ValidationError
from kme_rag.report.intervals import newcombe_difference, retainability, scalability, wilson


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (5, 10, 0.2366, 0.7634),  # symmetric around 0.5
        (0, 10, 0.0, 0.2775),  # never below 0, unlike the normal approximation
        (10, 10, 0.7225, 1.0),
        (81, 263, 0.2553, 0.3662),  # Newcombe (1998), table I
    ],
)
def test_wilson_interval(k: int, n: int, low: float, high: float) -> None:
    interval = wilson(k, n)
    assert interval.value == pytest.approx(k / n)
    assert interval.low == pytest.approx(low, abs=1e-4)
    assert interval.high == pytest.approx(high, abs=1e-4)


def test_wilson_with_no_trials_is_uninformative() -> None:
    assert (wilson(0, 0).low, wilson(0, 0).high) == (0.0, 1.0)


def test_wilson_rejects_impossible_counts() -> None:
    with pytest.raises(ValidationError, match="k=11, n=10"):
        wilson(11, 10)


def test_newcombe_difference_matches_the_published_example() -> None:
    # Newcombe (1998), table II, method 10: 56/70 - 48/80 = 0.2 (0.0524, 0.3339) and
    # 0/10 - 0/20 = 0 (-0.1611, 0.2775)
    diff = newcombe_difference(48, 80, 56, 70)
    assert diff.value == pytest.approx(0.2)
    assert (diff.low, diff.high) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    zero = newcombe_difference(0, 20, 0, 10)
    assert (zero.low, zero.high) == pytest.approx((-0.1611, 0.2775), abs=1e-4)


def test_newcombe_difference_of_equal_samples_spans_zero() -> None:
    diff = newcombe_difference(98, 100, 98, 100)
    assert diff.value == 0.0
    assert diff.low < 0 < diff.high


def test_per_edit_scaling_keeps_the_sign() -> None:
    per_edit = newcombe_difference(50, 50, 40, 50).scaled(1 / 950)
    assert per_edit.value == pytest.approx(-10 / 50 / 950)
    assert per_edit.low < per_edit.value < per_edit.high < 0


def test_retainability_is_the_mean_step_and_telescopes() -> None:
    accuracies = [1.0, 0.9, 0.95, 0.8]
    assert retainability(accuracies) == pytest.approx((0.8 - 1.0) / 3)
    assert retainability([0.5, 0.5, 0.5]) == 0.0  # no forgetting


def test_retainability_needs_two_measurements() -> None:
    with pytest.raises(ValidationError):
        retainability([1.0])


def test_scalability_is_relative_to_the_smallest_store() -> None:
    assert scalability({1000: 0.97, 1: 1.0, 100: 0.99}) == pytest.approx(
        {1: 0.0, 100: -0.01, 1000: -0.03}
    )
