"""MeLLo (Zhong et al. 2023, MQuAKE): decompose, answer, retrieve an edited fact, self-check.

The baseline, kept faithful to the paper's loop: the few-shot prompt
(``mquake/prompts/MeLLo-prompt.txt``) plus ``"Question: …"``; the model writes a
subquestion and its own answer and is stopped at ``"Retrieved fact:"``; the edited fact
nearest the subquestion (top 1) is appended and the model continues — it writes whether
the fact contradicts its answer, the intermediate answer, and the next subquestion; at
most 4 rounds; the answer is read from a last line ``"Final answer: …"``.

``loose=True`` is the measured relaxation for small base models: generation also stops
at the next ``"Question:"`` (a 270M model runs on into a new few-shot example) and
``"Final answer:"`` counts on any line.

Parsing is pure (:func:`parse_round`); the loop takes a backend and a retrieval function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kme_rag.backends import Backend
from kme_rag.memory.store import EditMemory

__all__ = [
    "MelloParams",
    "MelloResult",
    "MelloRound",
    "load_prompt",
    "mello_answerer",
    "parse_round",
    "run_mello",
]

FACT = "Retrieved fact:"
FINAL = "Final answer:"
SUBQUESTION = "Subquestion:"
Retrieve = Callable[[str], str | None]  # subquestion -> the nearest edited fact, if any


@dataclass(frozen=True)
class MelloParams:
    max_rounds: int = 4
    max_tokens: int = 160
    loose: bool = False


@dataclass(frozen=True)
class MelloRound:
    """One generation: what the model wrote, and the subquestion/fact it led to."""

    generated: str
    subquestion: str | None = None
    fact: str | None = None
    final: str | None = None


@dataclass(frozen=True)
class MelloResult:
    answer: str | None
    rounds: tuple[MelloRound, ...]

    @property
    def checks(self) -> tuple[int, int]:
        """(contradicts, does not contradict): the self-check verdicts the model wrote."""
        text = "\n".join(r.generated for r in self.rounds)
        return text.count("contradicts"), text.count("does not contradict")


def load_prompt(data_dir: Path | None = None) -> str:
    """MeLLo's few-shot prompt: under ``data_dir`` when given, else the shipped copy."""
    from kme_rag.multihop.hops import prompts_folder

    return (prompts_folder(data_dir) / "MeLLo-prompt.txt").read_text(encoding="utf-8")


def parse_round(generated: str, loose: bool = False) -> MelloRound:
    """Read one generation the way MeLLo's reference loop does: a final answer on the
    last line (any line when ``loose``), else the subquestion on the line before the
    model's generated answer."""
    lines = [line.strip() for line in generated.strip().split("\n") if line.strip()]
    candidates = lines if loose else lines[-1:]
    for line in candidates:
        if line.startswith(FINAL):
            return MelloRound(generated, final=line[len(FINAL) :].strip())
    if len(lines) >= 2 and lines[-2].startswith(SUBQUESTION):
        return MelloRound(generated, subquestion=lines[-2][len(SUBQUESTION) :].strip())
    return MelloRound(generated)


def run_mello(
    question: str,
    backend: Backend,
    retrieve: Retrieve,
    prompt: str,
    params: MelloParams | None = None,
) -> MelloResult:
    """Answer ``question`` with MeLLo; ``answer`` is None when the loop fails (no final
    answer within ``max_rounds``, or a generation that is neither step nor answer)."""
    params = params or MelloParams()
    stop = (FACT, "\nQuestion:") if params.loose else (FACT,)
    transcript = f"{prompt.rstrip()}\n\nQuestion: {question}\n"
    rounds: list[MelloRound] = []
    for _ in range(params.max_rounds):
        generated = backend.complete(transcript, max_tokens=params.max_tokens, stop=stop)
        step = parse_round(generated, params.loose)
        if step.final is not None or step.subquestion is None:
            rounds.append(step)
            return MelloResult(step.final, tuple(rounds))
        fact = (retrieve(step.subquestion) or "").rstrip(".")
        rounds.append(MelloRound(generated, step.subquestion, fact))
        transcript += f"{generated}{FACT} {fact}."
    return MelloResult(None, tuple(rounds))


def mello_answerer(
    backend: Backend, memory: EditMemory, prompt: str
) -> Callable[[str], tuple[str | None, dict[str, Any]]]:
    """MeLLo (loose loop) retrieving the top-1 edited statement of ``memory`` per
    subquestion: question -> (answer, the subquestions and self-check verdicts)."""
    params = MelloParams(loose=True)

    def retrieve(subquestion: str) -> str | None:
        hits = memory.search(subquestion, k=1)
        return hits[0].edit.statement if hits else None

    def answer(question: str) -> tuple[str | None, dict[str, Any]]:
        result = run_mello(question, backend, retrieve, prompt, params)
        contradicts, consistent = result.checks
        return result.answer, {
            "subquestions": [r.subquestion for r in result.rounds if r.subquestion],
            "contradicts": contradicts,
            "does_not_contradict": consistent,
        }

    return answer
