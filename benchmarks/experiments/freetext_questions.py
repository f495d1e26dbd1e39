"""The held-out free-text set through the editor, as `kme ask` builds it: each statement
stored alone with `EditMemory.add_text` (undone afterwards), its questions asked (right:
the answer names the new object or an alias) and its must-not-change questions asked
(kept: the answer is identical to the raw model's at the editor's answer length).

    KME_N_THREADS=2 .venv/bin/python benchmarks/experiments/freetext_questions.py \
        --out benchmarks/results/2026-12-04/freetext-questions.json

Rows go to ``<out>.cases.jsonl``. Nothing here is tuned: the set is held out.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from kme_rag.bench.harness import contains_answer
from kme_rag.bench.provenance import provenance
from kme_rag.editor import EditorParams, KnowledgeEditor
from kme_rag.settings import Settings

HELD_OUT = Path(__file__).parents[1] / "heldout" / "freetext-v1.jsonl"


def _rate(flags: list[bool]) -> dict[str, Any]:
    return {
        "rate": round(sum(flags) / len(flags), 4) if flags else 0.0,
        "k": sum(flags),
        "n": len(flags),
    }


def main() -> None:
    from kme_rag.backends import make_backend
    from kme_rag.memory.store import EditMemory

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    items = [json.loads(line) for line in HELD_OUT.read_text(encoding="utf-8").splitlines()]
    settings = Settings().model_copy(
        update={"store": Path(tempfile.mkdtemp(prefix="kme-freetext-")), "chroma_url": None}
    )
    backend = make_backend(settings)
    memory = EditMemory.open(settings)
    editor = KnowledgeEditor.from_settings(settings, memory, backend=backend)
    tokens = EditorParams().max_tokens
    rows: list[dict[str, Any]] = []
    for item in items:
        added = memory.add_text(item["statement"], source="bench:freetext-v1")
        try:
            for kind, entries in (
                ("question", item["questions"]),
                ("keep", item["must_not_change"]),
            ):
                for entry in entries:
                    turns = [{"role": "user", "content": entry["question"]}]
                    answer = editor.chat(turns)
                    row: dict[str, Any] = {
                        "id": item["id"],
                        "kind": kind if kind == "question" else entry["kind"],
                        "question": entry["question"],
                        "text": answer.text,
                        "route": answer.route,
                        "edits": answer.edit_ids,
                    }
                    if kind == "question":
                        fact = item["facts"][entry["fact"]]
                        names = (fact["object"], *fact["object_aliases"])
                        row["right"] = any(contains_answer(answer.text, n) for n in names)
                        row["fact_extracted"] = any(
                            e.structured
                            and any(contains_answer(e.target_new or "", n) for n in names)
                            for e in added.stored
                        )
                    else:
                        reference = backend.chat(turns, max_tokens=tokens)
                        row["kept"] = answer.text == reference
                    rows.append(row)
        finally:
            memory.undo()
    questions = [r for r in rows if r["kind"] == "question"]
    keeps = [r for r in rows if r["kind"] != "question"]
    figures = {
        "answered_with_new_fact": _rate([r["right"] for r in questions]),
        "answered_when_fact_extracted": _rate(
            [r["right"] for r in questions if r["fact_extracted"]]
        ),
        "answered_when_not_extracted": _rate(
            [r["right"] for r in questions if not r["fact_extracted"]]
        ),
        "must_not_change_kept": _rate([r["kept"] for r in keeps]),
        **{
            f"kept_{k}": _rate([r["kept"] for r in keeps if r["kind"] == k])
            for k in ("same_subject", "neighbour", "unrelated")
        },
    }
    routes = {
        k: dict(Counter(r["route"] for r in rows if (r["kind"] == "question") == (k == "question")))
        for k in ("question", "keep")
    }
    out = {
        "dataset": HELD_OUT.name,
        "items": len(items),
        "path": "editor (as kme ask)",
        "model": backend.name,
        "figures": figures,
        "routes": routes,
    }
    out |= provenance("python benchmarks/experiments/freetext_questions.py")
    print(json.dumps(figures, indent=1))
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    with args.out.with_suffix(".cases.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
