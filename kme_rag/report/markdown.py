"""Markdown building blocks shared by the report and the benchmark table scripts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kme_rag.report.intervals import Interval, wilson

__all__ = [
    "DASH",
    "ci_cell",
    "command_lines",
    "markdown_table",
    "pct",
    "share_cell",
    "write_markdown",
]

DASH = "\u2013"  # an en dash: the empty cell, and the joint of an interval


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1
) -> list[str]:
    """A GitHub Markdown table; columns from ``numeric_from`` on are right-aligned."""
    align = ["---" if i < numeric_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def pct(value: float | None, digits: int = 1) -> str:
    return DASH if value is None else f"{value * 100:.{digits}f}%"


def ci_cell(interval: Interval, digits: int = 1) -> str:
    """``95.6% (93.4-97.1)`` (en dash): the estimate and its 95% interval, in percent."""
    lo, hi = interval.low * 100, interval.high * 100
    return f"{pct(interval.value, digits)} ({lo:.{digits}f}{DASH}{hi:.{digits}f})"


def share_cell(k: int | None, n: int | None) -> str:
    """A proportion k/n with its Wilson interval, or a dash when there is none."""
    if k is None or not n:
        return DASH
    return ci_cell(wilson(k, n))


def command_lines(summaries: Iterable[Mapping[str, Any]]) -> list[str]:
    """The "Commands:" list that closes a results table: each run's command and date."""
    return ["Commands:", "", *(f"- `{s['command']}` ({s['date']})" for s in summaries)]


def write_markdown(path: Path, lines: Sequence[str]) -> str:
    """Write ``lines`` as one Markdown file (newline-terminated); returns the text."""
    text = "\n".join(lines) + "\n"
    path.write_text(text, encoding="utf-8")
    return text
