"""Which known hops of ``multihop-v1.jsonl`` the bundled model knows, unedited.

    KME_N_THREADS=1 .venv/bin/python benchmarks/heldout/verify_multihop.py \
        --out benchmarks/heldout/verification-multihop-v1.json

Asks every two-hop item's ``known`` question (hop 1 items: the second hop, of the new
object; hop 2 items: the first hop, of the named subject) the way ``kme ask`` asks a
question no edit is in scope of (:func:`verify.ask`: one user message, greedy, the
editor's default answer length). An item is *known* when :func:`~kme_rag.matching.
contains_answer` finds the expected answer; the benchmark reports its figures on the known
items (and counts the others).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from verify import ask, read_records

from kme_rag.backends import make_backend
from kme_rag.editor import EditorParams
from kme_rag.matching import contains_answer
from kme_rag.settings import Settings

SET = Path(__file__).with_name("multihop-v1.jsonl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", type=Path, default=SET)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    backend = make_backend(Settings())
    tokens = EditorParams().max_tokens
    started = time.perf_counter()
    rows = []
    for item in read_records(args.set):
        if item["kind"] not in ("hop1", "hop2"):
            continue
        known = item["known"]
        answer = ask(backend, known["question"], tokens)
        rows.append(
            {
                "id": item["id"],
                "question": known["question"],
                "expected": known["answer"],
                "answer": answer,
                "known": contains_answer(answer, known["answer"]),
            }
        )
    by_kind: dict[str, list[int]] = {}
    for row in rows:
        tally = by_kind.setdefault(row["id"].split("-")[0], [0, 0])
        tally[0] += row["known"]
        tally[1] += 1
    out = {
        "set": args.set.name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
        "known": {k: {"known": v[0], "asked": v[1]} for k, v in by_kind.items()},
        "rows": rows,
    }
    args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(out["known"]))


if __name__ == "__main__":
    main()
