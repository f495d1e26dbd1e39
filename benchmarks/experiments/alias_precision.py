"""What the known aliases (kme_rag/memory/aliases.py) add to subject linking, and what they break.

    .venv/bin/python benchmarks/experiments/alias_precision.py \
        --out benchmarks/results/2026-12-03/alias-precision.json [--sample 120]

One edit per country of the gazetteer (subject: its name). Each text is linked the way
the editor links a query (FactGraph.mentioned, then find_mention over the subject's
names); a link that the country's own name would not make is an *alias link*.

- **False alias links** (locality risk), on questions whose subject is not a country as
  the alias names it: ParaRel questions over T-REx pairs (every relation, three forms),
  and, as a measurement only, CounterFact's evaluation prompts, paraphrases and
  locality prompts (all 10,000 cases) and the held-out natural set's questions.
- **Recall**: ParaRel questions of T-REx pairs whose subject is a country, the subject
  replaced by each of its aliases (and lower-cased, as casual typing does): linked to
  that country, and to it alone?
- **Precision in running text**: every alias mention in WikiText-2's validation and test
  text, and a seeded sample of them written out with its context for a person to label
  (``--sample``); the labels are in the NOTES beside the result.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

from kme_rag.bench.provenance import provenance
from kme_rag.memory.aliases import _table, subject_names
from kme_rag.memory.edit import Edit, normalise_name
from kme_rag.memory.graph import FactGraph
from kme_rag.memory.mention import find_mention
from kme_rag.scope.pararel import load_relations, phrase
from kme_rag.settings import Settings

FORMS = ("question", "casual", "cloze")


def countries() -> list[Edit]:
    names = sorted({spellings[0] for spellings in _table().values()})
    return [Edit(subject=name, relation="p", target_new="x") for name in names]


class Linker:
    def __init__(self, edits: list[Edit]) -> None:
        self.graph = FactGraph(edits)
        self._spellings = {
            e.subject: {normalise_name(n) for n in subject_names(e)} for e in edits if e.subject
        }

    def spellings(self, country: str) -> set[str]:
        return self._spellings[country]

    def links(self, text: str) -> tuple[set[str], set[str]]:
        """(countries linked by any name, of those the ones only an alias links)."""
        every, alias_only = set(), set()
        for edit in self.graph.mentioned(text):
            assert edit.subject
            mention = find_mention(text, subject_names(edit))
            if not mention.exact or mention.extended:
                continue
            every.add(edit.subject)
            if not find_mention(text, (edit.subject,)).exact:
                alias_only.add(edit.subject)
        return every, alias_only


def trex_pairs(data_dir: Path) -> dict[str, list[dict[str, str]]]:
    folder = data_dir / "pararel" / "trex"
    return {
        path.stem: [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for path in sorted(folder.glob("P*.jsonl"))
    }


def false_links(linker: Linker, texts: list[tuple[str, str]]) -> dict[str, object]:
    """Alias links in ``texts`` ((text, its subject)) to a country that is not its subject."""
    wrong: Counter[str] = Counter()
    examples = []
    for text, subject in texts:
        _, alias_only = linker.links(text)
        for country in alias_only:
            if normalise_name(subject) in linker.spellings(country):
                continue  # "Eswatini" asked about: the alias names the subject
            wrong[country] += 1
            if len(examples) < 25:
                examples.append({"text": text, "linked": country})
    return {
        "texts": len(texts),
        "false_alias_links": sum(wrong.values()),
        "per_1000": round(1000 * sum(wrong.values()) / max(1, len(texts)), 3),
        "by_country": dict(wrong.most_common()),
        "examples": examples,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sample", type=int, default=120)
    parser.add_argument("--per-relation", type=int, default=300)
    parser.add_argument("--counterfact", type=int, default=10_000, help="evaluation cases")
    args = parser.parse_args()
    data_dir = Settings().data_dir
    rng = random.Random(0)
    edits = countries()
    linker = Linker(edits)
    spelling_of = {normalise_name(s): spellings[0] for s, spellings in _table().items()}
    relations = load_relations(data_dir)
    pairs = trex_pairs(data_dir)

    trex_texts, recall_rows = [], []
    for rid, relation in relations.items():
        for pair in pairs.get(rid, [])[: args.per_relation]:
            subject = pair["sub_label"]
            country = spelling_of.get(normalise_name(subject))
            for form in FORMS:
                text = phrase(relation, subject, form, rng)
                if text is None:
                    continue
                trex_texts.append((text, subject))
                if country is None:
                    continue
                for alias in _table()[normalise_name(subject)]:
                    if normalise_name(alias) == normalise_name(subject):
                        continue
                    # the question in its own form, with the alias typed in its place
                    typed = alias.lower() if form == "casual" else alias
                    asked = text.replace(subject if form != "casual" else subject.lower(), typed)
                    if typed.lower() not in asked.lower():
                        continue
                    every, _ = linker.links(asked)
                    recall_rows.append(
                        {
                            "form": form,
                            "alias": alias,
                            "country": country,
                            "linked": country in every,
                            "only_it": every == {country},
                            "text": asked,
                        }
                    )

    eval_texts = []
    counterfact = json.loads((data_dir / "counterfact" / "counterfact-edit.json").read_text())
    for case in counterfact[: args.counterfact]:
        subject = case["subject"]
        eval_texts += [(case["prompt"], subject), (case["rephrase_prompt"], subject)]
        eval_texts.append((case["locality_prompt"], ""))
    heldout = Path(__file__).resolve().parents[1] / "heldout" / "natural-v1.jsonl"
    for line in heldout.read_text().splitlines():
        record = json.loads(line)
        for group in record["questions"].values():
            eval_texts += [(q, record["subject"]) for q in group]
        eval_texts += [(q["question"], record["subject"]) for q in record["same_subject"]]
        eval_texts += [(q, "") for q in record["neighbours"]]

    mentions = []
    for name in ("wiki.valid.tokens", "wiki.test.tokens", "valid.txt", "test.txt"):
        path = data_dir / "wikitext-2" / name
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("="):
                continue
            for sentence in line.split(" . "):
                _, alias_only = linker.links(sentence)
                for country in alias_only:
                    mentions.append({"country": country, "text": sentence[:300]})
    sample = random.Random(1).sample(mentions, min(args.sample, len(mentions)))

    def rate(rows: list[dict[str, object]], key: str) -> float:
        return round(100 * sum(bool(r[key]) for r in rows) / max(1, len(rows)), 2)

    casual = [r for r in recall_rows if r["form"] == "casual"]
    formal = [r for r in recall_rows if r["form"] != "casual"]
    result = {
        "measured": provenance("python benchmarks/experiments/alias_precision.py"),
        "countries": len(edits),
        "spellings": len(_table()),
        "false_links_trex": false_links(linker, trex_texts),
        "false_links_evaluation": false_links(linker, eval_texts),
        "recall": {
            "questions": len(recall_rows),
            "linked_formal_pct": rate(formal, "linked"),
            "linked_casual_pct": rate(casual, "linked"),
            "linked_to_it_alone_pct": rate(recall_rows, "only_it"),
            "missed": [r for r in recall_rows if not r["linked"]][:40],
        },
        "wikitext_alias_mentions": {
            "count": len(mentions),
            "by_country": dict(Counter(m["country"] for m in mentions).most_common()),
            "sample": sample,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    summary = {k: v for k, v in result.items() if k not in ("measured",)}
    for key in ("false_links_trex", "false_links_evaluation"):
        block = dict(summary[key])  # type: ignore[call-overload]
        block.pop("examples")
        print(key, block)
    print("recall", {k: v for k, v in result["recall"].items() if k != "missed"})
    print("wikitext mentions", len(mentions), result["wikitext_alias_mentions"]["by_country"])


if __name__ == "__main__":
    main()
