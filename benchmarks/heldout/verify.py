"""Which facts of a held-out candidate file the bundled model knows, unedited.

    KME_N_THREADS=1 .venv/bin/python benchmarks/heldout/verify.py \
        benchmarks/heldout/candidates-v1.jsonl \
        --out benchmarks/heldout/verification-candidates-v1.json
    KME_N_THREADS=1 .venv/bin/python benchmarks/heldout/verify.py --check \
        benchmarks/heldout/natural-v1.jsonl --out benchmarks/heldout/verification-natural-v1.json

Asks every record's formal questions the way ``kme ask`` asks a question with no edit in
scope: one user message, Q/A-framed for the base model, greedy, through the backend the
``KME_*`` settings name, with the editor's default answer length (``EditorParams().
max_tokens``, 24 tokens), so the recorded answers are the unedited references the natural
benchmark compares against. A record is *known* when :func:`~kme_rag.matching.
contains_answer` finds its ``target_true`` in the answer to its first formal question.

The output holds every answer and, under ``selected``, the known records chosen for the
set (``--size``, 120): at most one edit per subject (so no edit's same-subject questions
fall in scope of another edit of the set), taken relation by relation in turn so the
relations stay balanced, each relation's records in file order but those whose subject is
not in CounterFact's evaluation split (``--avoid``) first. ``--check`` instead confirms that
every record of a finished set is still known (exit status 1 when one is not). ``--answers``
re-selects from the answers an earlier run recorded, asking nothing (greedy decoding on one
machine gives the same text run to run: a second run of ``candidates-v1.jsonl`` on
2026-12-03 matched the first on all 156 records it reached before it was stopped).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kme_rag.backends import Backend, make_backend
from kme_rag.editor import EditorParams
from kme_rag.matching import contains_answer
from kme_rag.memory.edit import normalise_name
from kme_rag.settings import Settings


def read_records(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def ask(backend: Backend, question: str, max_tokens: int) -> str:
    return backend.chat([{"role": "user", "content": question}], max_tokens=max_tokens)


def verify(
    backend: Backend, records: list[dict[str, Any]], max_tokens: int
) -> list[dict[str, Any]]:
    """Each record's formal answers and whether each states ``target_true``."""
    rows = []
    for index, record in enumerate(records, 1):
        answers = [ask(backend, q, max_tokens) for q in record["questions"]["formal"]]
        hits = [contains_answer(a, record["target_true"]) for a in answers]
        rows.append(
            {
                "id": record["id"],
                "subject": record["subject"],
                "relation": record["relation"],
                "target_true": record["target_true"],
                "formal": [
                    {"question": q, "answer": a, "states_true": h}
                    for q, a, h in zip(record["questions"]["formal"], answers, hits, strict=True)
                ],
                "known": hits[0],
            }
        )
        mark = "ok  " if hits[0] else "MISS"
        print(f"[{index}/{len(records)}] {mark} {answers[0]!r}", file=sys.stderr, flush=True)
    return rows


def avoided_subjects(path: Path | None) -> set[str]:
    """Normalised subjects of a CounterFact-format file (none when it is missing)."""
    if path is None or not path.is_file():
        return set()
    return {normalise_name(r["subject"]) for r in json.loads(path.read_text(encoding="utf-8"))}


def select(rows: list[dict[str, Any]], avoid: set[str], size: int) -> list[str]:
    """Known records, one per subject, relations taken in turn (see the docstring)."""
    queues: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["known"]:
            queues[row["relation"]].append(row)
    for queue in queues.values():
        queue.sort(key=lambda r: normalise_name(r["subject"]) in avoid)  # stable: file order
    taken: set[str] = set()
    chosen: list[str] = []
    while any(queues.values()) and len(chosen) < size:
        for relation in list(queues):
            while queues[relation] and len(chosen) < size:
                row = queues[relation].pop(0)
                subject = normalise_name(row["subject"])
                if subject not in taken:
                    taken.add(subject)
                    chosen.append(row["id"])
                    break
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("records", type=Path, help="candidates or a finished set (JSONL)")
    parser.add_argument("--out", type=Path, help="write every answer here (JSON)")
    parser.add_argument("--check", action="store_true", help="every record must be known")
    parser.add_argument("--size", type=int, default=120, help="how many records to select")
    parser.add_argument("--avoid", type=Path, help="CounterFact-format file whose subjects go last")
    parser.add_argument("--answers", type=Path, help="reuse the rows of an earlier --out file")
    args = parser.parse_args()
    settings = Settings()
    avoid_file = args.avoid or settings.data_dir / "counterfact" / "counterfact-edit.json"
    avoid = avoided_subjects(avoid_file)
    backend = make_backend(settings)
    max_tokens = EditorParams().max_tokens
    records = read_records(args.records)
    start = time.perf_counter()
    if args.answers is not None:
        earlier = json.loads(args.answers.read_text(encoding="utf-8"))
        rows, seconds, date = earlier["rows"], earlier["seconds"], earlier["date"]
        if [r["id"] for r in rows] != [r["id"] for r in records]:
            raise SystemExit(f"{args.answers} holds the answers of other records")
    else:
        rows = verify(backend, records, max_tokens)
        seconds = round(time.perf_counter() - start, 1)
        date = datetime.now(UTC).strftime("%Y-%m-%d")
    known = sum(r["known"] for r in rows)
    by_relation: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        by_relation[row["relation"]][0] += row["known"]
        by_relation[row["relation"]][1] += 1
    summary = {
        "file": args.records.name,
        "date": date,
        "model": backend.name,
        "max_tokens": max_tokens,
        "n_threads": settings.n_threads,
        "seconds": seconds,
        "answers_from": None if args.answers is None else args.answers.name,
        "records": len(rows),
        "known": known,
        "known_by_relation": {k: {"known": v[0], "asked": v[1]} for k, v in by_relation.items()},
        "second_formal_states_true": sum(r["formal"][1]["states_true"] for r in rows if r["known"]),
        "avoid": {"file": avoid_file.name, "subjects": len(avoid)},
        "selected": [] if args.check else select(rows, avoid, args.size),
        "in_avoided_split": sorted(r["id"] for r in rows if normalise_name(r["subject"]) in avoid),
        "rows": rows,
    }
    if args.out is not None:
        args.out.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    print(f"{known}/{len(rows)} known in {seconds} s", file=sys.stderr)
    if args.check and known < len(rows):
        missing = [r["id"] for r in rows if not r["known"]]
        print(f"not known: {', '.join(missing)}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
