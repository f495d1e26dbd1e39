"""Single hops asked of the model: one relation of one subject, with few-shot examples.

MQuAKE ships, per Wikidata relation, a question template (``question_templates.json``),
a cloze template and a few-shot block of answered questions (``rel-prompts.json``). A hop
is asked as ``few-shot block + "Q: {question} A:"`` and the answer read to the end of
the line: the short single-hop call the multi-hop methods make, and the probe that tells
which hops the unedited model knows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kme_rag.backends import Backend

__all__ = ["MQUAKE_PROMPTS", "RelationPrompts", "ask_hop", "prompts_folder"]

# MQuAKE's prompt files (MIT, kme_rag/memory/LICENSES/mquake.txt), shipped in the package so
# the runtime never reads a data folder; a test checks they are the data folder's bytes.
MQUAKE_PROMPTS = Path(__file__).parent / "mquake_prompts"


def prompts_folder(data_dir: Path | None) -> Path:
    """Where MQuAKE's prompt files are: under ``data_dir`` when one is given (benchmarks),
    else the copies shipped in the package (the runtime)."""
    return MQUAKE_PROMPTS if data_dir is None else data_dir / "mquake" / "prompts"


@dataclass(frozen=True)
class RelationPrompts:
    """MQuAKE's per-relation prompts: question templates and few-shot blocks (both
    empty when the data folder lacks them)."""

    questions: dict[str, str]  # relation id -> "Which country is [X] located in?"
    shots: dict[str, list[str]]  # relation id -> ["Q: ... A: ...", ...]

    @classmethod
    def load(cls, data_dir: Path | None = None) -> RelationPrompts:
        folder = prompts_folder(data_dir)
        if not (folder / "question_templates.json").is_file():
            return cls({}, {})  # no MQuAKE prompts: hops are asked bare
        questions = json.loads((folder / "question_templates.json").read_text(encoding="utf-8"))
        blocks = json.loads((folder / "rel-prompts.json").read_text(encoding="utf-8"))
        shots = {r: [line for line in b.split("\n") if line.strip()] for r, b in blocks.items()}
        return cls(questions, shots)

    def question(self, relation_id: str, subject: str) -> str:
        return self.questions[relation_id].replace("[X]", subject)

    def prompt(self, relation_id: str, question: str, k: int = 4) -> str:
        """``k`` answered examples of the relation (none when MQuAKE has none for it),
        then the question."""
        examples = self.shots.get(relation_id, [])[:k]
        return "".join(f"{line}\n" for line in examples) + f"Q: {question} A:"


def ask_hop(
    backend: Backend,
    prompts: RelationPrompts,
    relation_id: str,
    question: str,
    max_tokens: int = 12,
    k: int = 4,
) -> str:
    """The model's answer to one single-hop question, stripped, to the end of its line."""
    text = backend.complete(
        prompts.prompt(relation_id, question, k), max_tokens=max_tokens, stop=("\n",)
    )
    return text.strip()
