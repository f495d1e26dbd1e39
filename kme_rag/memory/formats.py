"""Reading and writing edits in files: kme JSONL, CounterFact, zsRE and MQuAKE.

Pure functions from parsed records to :class:`Edit` objects, so each format is testable
without a store. JSONL is the project's own lossless format: one ``Edit`` per line with
every field, ids, timestamps, statuses and change ids included.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from kme_rag.errors import ValidationError
from kme_rag.memory.edit import Edit, parse_edit

__all__ = [
    "FORMATS",
    "Format",
    "counterfact_edit",
    "detect_format",
    "mquake_edits",
    "read_edits",
    "write_jsonl",
    "zsre_edit",
]

Format = Literal["jsonl", "counterfact", "zsre", "mquake"]
FORMATS: tuple[Format, ...] = ("jsonl", "counterfact", "zsre", "mquake")


def _template(text: str, subject: str) -> str | None:
    """``text`` with its first mention of ``subject`` replaced by ``{}``, or None."""
    if subject not in text or "{" in text or "}" in text:
        return None
    return text.replace(subject, "{}", 1)


def counterfact_edit(record: dict[str, Any], source: str) -> Edit:
    """A CounterFact record (flattened MEND/EasyEdit form) as a structured edit."""
    subject, prompt = record["subject"], record["prompt"]
    template = _template(prompt, subject) or f"{prompt} {{}}"
    return parse_edit(
        {
            "subject": subject,
            "relation": template,
            "prompt": template,
            "target_new": record["target_new"],
            "target_true": record.get("ground_truth"),
            "source": f"{source}#{record.get('case_id', '?')}",
        }
    )


def zsre_edit(record: dict[str, Any], source: str, index: int) -> Edit:
    """A zsRE (MEND form) question-answering record as a structured edit."""
    subject, question = record["subject"], record["src"]
    template = _template(question, subject)
    answers = record.get("answers") or []
    return parse_edit(
        {
            "subject": subject,
            "relation": template or question,
            "prompt": template,
            "target_new": record["alt"],
            "target_true": answers[0] if answers else None,
            "statement": f"{question} {record['alt']}.",
            "source": f"{source}#{index}",
        }
    )


def _relation_label(case: dict[str, Any], rewrite: dict[str, Any]) -> str:
    """The Wikidata relation label of a rewrite ("country of citizenship"), via the case's
    labelled triples; the cloze template when the case does not carry them."""
    orig = case.get("orig") or {}
    for ids, labels in zip(
        orig.get("new_triples", []), orig.get("new_triples_labeled", []), strict=False
    ):
        if ids[1] == rewrite.get("relation_id") and labels[0] == rewrite["subject"]:
            return str(labels[1])
    return str(rewrite["prompt"])


def mquake_edits(case: dict[str, Any], source: str) -> list[Edit]:
    """The requested rewrites of one MQuAKE case, with relation labels and answer aliases."""
    aliases = {hop["cloze"]: hop.get("answer_alias", []) for hop in case.get("new_single_hops", [])}
    edits = []
    for rewrite in case["requested_rewrite"]:
        cloze = rewrite["prompt"].format(rewrite["subject"])
        edits.append(
            parse_edit(
                {
                    "subject": rewrite["subject"],
                    "relation": _relation_label(case, rewrite),
                    "relation_id": rewrite.get("relation_id"),
                    "prompt": rewrite["prompt"],
                    "target_new": rewrite["target_new"]["str"],
                    "target_true": rewrite["target_true"]["str"],
                    "statement": rewrite.get("fact_new") or None,
                    "target_aliases": aliases.get(cloze, []),
                    "source": f"{source}#{case.get('case_id', '?')}",
                }
            )
        )
    return edits


def detect_format(path: Path) -> Format:
    """Guess a file's format from its first record."""
    if path.suffix == ".jsonl":
        return "jsonl"
    records = _load_json(path)
    first = records[0] if records else {}
    if "requested_rewrite" in first:
        return "mquake"
    if "src" in first and "alt" in first:
        return "zsre"
    if "target_new" in first and "prompt" in first:
        return "counterfact"
    raise ValidationError(f"cannot tell the format of {str(path)!r}; pass --format")


def _load_json(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValidationError(f"cannot read {str(path)!r}: {exc}") from None
    if not isinstance(data, list):
        raise ValidationError(f"expected a JSON list of records in {str(path)!r}")
    return data


def _read_jsonl(path: Path) -> Iterator[Edit]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValidationError(f"cannot read {str(path)!r}: {exc}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"{path}:{number}: not JSON: {exc}") from None
        yield parse_edit(record)


def read_edits(
    path: Path, fmt: Format | None = None, limit: int | None = None, *, keyed: bool = False
) -> list[Edit]:
    """Every edit in a file, in file order; ``limit`` counts records (MQuAKE: cases).

    ``keyed`` (public formats): each edit's id is decided by the file's bytes and the
    edit's place in it (``f<sha256[:12]>-<n>``), so reading it again gives the same ids:
    what lets :meth:`EditMemory.resume_import` finish an interrupted import."""
    fmt = fmt or detect_format(path)
    if fmt == "jsonl":
        return list(_read_jsonl(path))[:limit]
    records = _load_json(path)[:limit]
    source = f"import:{path.name}"
    try:
        if fmt == "counterfact":
            edits = [counterfact_edit(r, source) for r in records]
        elif fmt == "zsre":
            edits = [zsre_edit(r, source, i) for i, r in enumerate(records)]
        else:
            edits = [e for case in records for e in mquake_edits(case, source)]
    except (KeyError, TypeError, IndexError) as exc:
        raise ValidationError(f"{str(path)!r} is not a {fmt} file: missing {exc}") from None
    if not keyed:
        return edits
    digest = _file_digest(path)
    return [e.model_copy(update={"id": f"f{digest}-{n}"}) for n, e in enumerate(edits)]


def _file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as src:
        for block in iter(lambda: src.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()[:12]


def write_jsonl(edits: Iterable[Edit], path: Path) -> int:
    """Write edits one JSON object per line; returns how many."""
    count = 0
    with path.open("w", encoding="utf-8") as fh:
        for edit in edits:
            fh.write(json.dumps(edit.model_dump(mode="json"), ensure_ascii=False) + "\n")
            count += 1
    return count
