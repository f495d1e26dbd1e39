"""Free-text extraction measured on the held-out free-text set: precision and recall of
the facts read from each statement, for the classifier reader (the default), the pattern
extractor and the bundled model (few-shot), and what reading a statement costs.

    KME_N_THREADS=1 .venv/bin/python benchmarks/experiments/extraction.py \
        --out benchmarks/results/2026-12-04/extraction.json [--no-model] [--counterfact 500]

Beside the held-out set: ``extraction-dev.jsonl`` (this folder: 40 news-like sentences and
24 that state no fact, written for tuning the classifier reader's rules; the only set they
were tuned on, with CounterFact *train* sentences) and, with ``--counterfact N``, the first
N CounterFact *evaluation* records as sentences (prompt + new object; gold relation not
given, so matched on subject and object) — the statements ``kme bench counterfact
--edits-as sentence`` stores.

A predicted fact is right when its subject and object are the gold fact's (or aliases,
compared as normalised names) and its relation is the gold one: the same Wikidata id, with
the location ids P131/P276 taken as one (MQuAKE asks both "Where is X located?"); a gold
fact without an id is matched on subject and object ("loose"). Precision: right / predicted;
recall: gold facts found / gold facts. Nothing here is tuned: the set is held out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from kme_rag.bench.provenance import provenance
from kme_rag.memory.catalogue import load_catalogue
from kme_rag.memory.edit import normalise_name
from kme_rag.memory.extract import ExtractedFact, Extractor, ModelExtractor, PatternExtractor

HELD_OUT = Path(__file__).parents[1] / "heldout" / "freetext-v1.jsonl"
DEV = Path(__file__).with_name("extraction-dev.jsonl")
_SAME = {"P276": "P131"}


def _names(name: str, aliases: list[str]) -> set[str]:
    return {normalise_name(n) for n in (name, *aliases)}


def _right(fact: ExtractedFact, gold: dict[str, Any]) -> bool:
    if normalise_name(fact.subject) not in _names(gold["subject"], gold["subject_aliases"]):
        return False
    if normalise_name(fact.target) not in _names(gold["object"], gold["object_aliases"]):
        return False
    rid = gold["relation_id"]
    return rid is None or _SAME.get(rid, rid) == _SAME.get(fact.relation.rid, fact.relation.rid)


def score(extractor: Extractor, items: list[dict[str, Any]]) -> dict[str, Any]:
    predicted = right = found = gold_n = 0
    ms: list[float] = []
    misses: list[dict[str, Any]] = []
    for item in items:
        start = time.perf_counter()
        facts = extractor.extract(item["statement"])
        ms.append((time.perf_counter() - start) * 1000)
        predicted += len(facts)
        right += sum(any(_right(f, g) for g in item["facts"]) for f in facts)
        gold_n += len(item["facts"])
        hit = [any(_right(f, g) for f in facts) for g in item["facts"]]
        found += sum(hit)
        if not all(hit) or len(facts) > sum(hit):
            misses.append(
                {
                    "id": item["id"],
                    "got": [(f.subject, f.relation.rid, f.target) for f in facts],
                    "gold": [(g["subject"], g["relation_id"], g["object"]) for g in item["facts"]],
                }
            )
    return {
        "precision": round(right / predicted, 4) if predicted else 0.0,
        "recall": round(found / gold_n, 4),
        "predicted": predicted,
        "right": right,
        "gold": gold_n,
        "found": found,
        "ms_per_statement_p50": round(statistics.median(ms), 2),
        "misses": misses,
    }


def _model_extractor() -> ModelExtractor:
    from kme_rag.backends import make_backend
    from kme_rag.memory.embedder import MiniLMEmbedder
    from kme_rag.settings import Settings

    settings = Settings()
    backend = make_backend(settings)
    embedder = MiniLMEmbedder.from_settings(settings)
    catalogue = load_catalogue()
    rids = list(catalogue)
    names = embedder.embed([catalogue[r].name for r in rids])

    def relation_of(name: str) -> str | None:
        sims = names @ embedder.embed([name])[0]
        return rids[int(np.argmax(sims))]

    def complete(prompt: str) -> str:
        return backend.complete(prompt, max_tokens=32, stop=["\n"])

    return ModelExtractor(complete, relation_of)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def counterfact_items(n: int) -> list[dict[str, Any]]:
    from kme_rag.bench.harness import counterfact_cases, sentence_of
    from kme_rag.settings import Settings

    path = Settings().data_dir / "counterfact" / "counterfact-edit.json"
    return [
        {
            "id": case.case_id,
            "statement": sentence_of(case),
            "facts": [
                {
                    "subject": case.edit.subject,
                    "subject_aliases": [],
                    "relation_id": None,
                    "object": case.edit.target_new,
                    "object_aliases": [],
                }
            ],
        }
        for case in counterfact_cases(path, n)
    ]


def main() -> None:
    from kme_rag.memory.embedder import MiniLMEmbedder
    from kme_rag.scope.extract import RelationExtractor
    from kme_rag.settings import Settings

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--no-model", action="store_true")
    parser.add_argument("--counterfact", type=int, default=0)
    args = parser.parse_args()
    sets = {"heldout": _jsonl(HELD_OUT), "dev": _jsonl(DEV)}
    if args.counterfact:
        sets["counterfact"] = counterfact_items(args.counterfact)
    reader = RelationExtractor(MiniLMEmbedder.from_settings(Settings()))
    reader.extract("Warm-up: Oslo is the capital of Norway.")  # relation texts embedded once
    extractors: dict[str, Extractor] = {"classifier": reader, "pattern": PatternExtractor()}
    if not args.no_model:
        extractors["model"] = _model_extractor()
    results: dict[str, dict[str, Any]] = {}
    for set_name, items in sets.items():
        for name, extractor in extractors.items():
            if name == "model" and set_name != "heldout":
                continue
            results.setdefault(set_name, {})[name] = r = score(extractor, items)
            print(set_name, name, {k: v for k, v in r.items() if k != "misses"})
    out = {
        "datasets": {"heldout": HELD_OUT.name, "dev": DEV.name, "counterfact": args.counterfact},
        "items": {k: len(v) for k, v in sets.items()},
        "results": results,
    }
    out |= provenance("python benchmarks/experiments/extraction.py")
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
