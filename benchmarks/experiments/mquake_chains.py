"""Where the graph walk's multi-hop answers are lost: linking, chain inference, or hops.

    .venv/bin/python benchmarks/experiments/mquake_chains.py RESULTS.cases.jsonl DATA.json

Reads the per-case rows ``kme bench mquake --method kme`` wrote and the MQuAKE file the
run used, and prints (and writes beside the rows as ``.chains.json``): how often the
linked subject is the chain's first subject, how often the inferred relation chain is the
gold new chain (per question, and per case by the any-of-3 rule), and the accuracy on
the questions whose chain was right, split by whether every model-answered hop was right.
Computed after the run from what it recorded; nothing is asked again.

Run on 2026-11-25's ``kme`` rows: ``results/2026-11-25/mquake-*.chains.json``, tabled by
``mquake_table.py`` in ``results/2026-11-25/mquake.md``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from kme_rag.bench.harness import contains_answer


def analyse(rows: list[dict[str, Any]], records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    linked = chained = right_chain_right = asked = 0
    cases_chained = 0
    model_hops = model_hops_right = 0
    for row in rows:
        record = records[str(row["case_id"])]
        gold = [t[1] for t in record["orig"]["new_triples"]]
        subject = record["orig"]["new_triples_labeled"][0][0]
        aliases = [[h["answer"], *h.get("answer_alias", [])] for h in record["new_single_hops"]]
        any_chain = False
        for question, ok in zip(row["questions"], row["new_right"], strict=True):
            asked += 1
            linked += question.get("subject") == subject
            if question.get("chain") != gold:
                continue
            chained += 1
            any_chain = True
            right_chain_right += ok
            for hop, names in zip(question["hops"], aliases, strict=False):
                if hop["source"] == "model":
                    model_hops += 1
                    model_hops_right += any(contains_answer(hop["answer"], n) for n in names)
        cases_chained += any_chain
    return {
        "questions": asked,
        "subject_linked": round(linked / asked, 4),
        "chain_right_per_question": round(chained / asked, 4),
        "chain_right_per_case_any_of_3": round(cases_chained / len(rows), 4),
        "accuracy_when_chain_right": round(right_chain_right / chained, 4) if chained else None,
        "model_hops_on_right_chains": model_hops,
        "model_hop_accuracy_on_right_chains": (
            round(model_hops_right / model_hops, 4) if model_hops else None
        ),
    }


def main() -> None:
    rows_path, data_path = Path(sys.argv[1]), Path(sys.argv[2])
    rows = [json.loads(line) for line in rows_path.read_text().splitlines()]
    records = {str(r["case_id"]): r for r in json.loads(data_path.read_text())}
    result = {"cases_file": rows_path.name, "data": data_path.name, **analyse(rows, records)}
    out = rows_path.with_name(rows_path.name.replace(".cases.jsonl", ".chains.json"))
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
