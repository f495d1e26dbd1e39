"""The one writer of a benchmark's files: the result JSON and, beside it, its per-case
rows as JSON lines (``<out>.cases.jsonl``), which REPORT.md's figures are rebuilt from.

Every result records how it was measured (:func:`~kme_rag.bench.provenance.provenance`:
command, date, machine) and names its rows file (``cases_file``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from tqdm import tqdm

from kme_rag.bench.provenance import provenance

__all__ = ["CaseRows", "cases_path", "write_result"]


def cases_path(out: Path) -> Path:
    """Where the rows of the result ``out`` go."""
    return out.with_suffix(".cases.jsonl")


class CaseRows:
    """The rows file of ``out``, written row by row (a crash keeps what was done), with
    a progress bar over ``total`` rows on stderr; ``rows`` holds them too."""

    def __init__(
        self, out: Path, total: int | None = None, *, desc: str | None = None, bar: bool = True
    ) -> None:
        self.path = cases_path(out)
        self.rows: list[dict[str, Any]] = []
        self._total, self._desc, self._show = total, desc, bar
        self._file: IO[str] | None = None
        self._bar: tqdm[Any] | None = None

    def __enter__(self) -> CaseRows:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="utf-8")
        self._bar = tqdm(
            total=self._total,
            unit="case",
            desc=self._desc,
            file=sys.stderr,
            disable=not self._show,
        )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._file is not None:
            self._file.close()

    def write(self, row: dict[str, Any], *, count: bool = True) -> None:
        """Append one row (``count``: it advances the progress bar)."""
        assert self._file is not None and self._bar is not None, "use CaseRows in a with block"
        self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._file.flush()
        self.rows.append(row)
        if count:
            self._bar.update(1)

    def extend(self, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        for row in rows:
            self.write(row)
        return self.rows


def write_result(
    out: Path, summary: dict[str, Any], rows: CaseRows | None = None
) -> dict[str, Any]:
    """Write the result JSON ``out``: ``summary``, then how it was measured (unless the
    summary already records it) and the rows file's name. Returns what was written."""
    result = {**summary}
    for key, value in provenance().items():
        result.setdefault(key, value)
    if rows is not None:
        result["cases_file"] = rows.path.name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return result
