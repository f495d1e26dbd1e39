"""The evaluation harness: efficacy, generality, locality and cost on public edit data.

Metrics follow the knowledge-editing survey (Section 4):

- **efficacy**: the answer to the edit's own prompt contains the new object;
- **generality**: the same for its paraphrase;
- **locality**: the answer to an unrelated (neighbourhood) prompt is *identical* to the
  unedited model's own answer to it, computed in the same run; plus the rate at which
  the new object leaks into those answers;
- latency per question (p50/p95) against the unedited model on the same prompts, and
  prompt tokens sent per question.

The unedited answers can come from an earlier ``--method none`` run of the same cases on
the same model (:class:`StoredReferences`): greedy decoding gives the same text run to run
on one machine (not across CPUs: llama.cpp builds for the host's SIMD, and 729 of 1,500
CounterFact answers differed between two machines on 2026-12-01 — the live checks below
count such mismatches), so they are read back instead of asked again, except on every
``live_every``-th case, where they are asked live beside the edited answer (the latency
comparison, and a check that the stored text is still what the model says).

Matching is one function, :func:`contains_answer`, on normalised text.
"""

from __future__ import annotations

import json
import logging
import random
import re
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kme_rag.backends import Backend, Message
from kme_rag.editor import Answer, KnowledgeEditor
from kme_rag.errors import ValidationError
from kme_rag.matching import contains_answer, normalise_answer
from kme_rag.memory.edit import Edit, normalise_name
from kme_rag.memory.formats import counterfact_edit, zsre_edit
from kme_rag.memory.store import EditMemory

if TYPE_CHECKING:
    from kme_rag.settings import Settings

__all__ = [
    "PROBES",
    "Case",
    "MemoryRun",
    "PromptKind",
    "StoredReferences",
    "bench_memory",
    "contains_answer",
    "counterfact_cases",
    "locality_conflicts",
    "normalise_answer",
    "percentile",
    "run_cases",
    "sentence_of",
    "summarise",
    "zsre_cases",
]

log = logging.getLogger(__name__)

PromptKind = Literal["cloze", "question"]
PROBES = ("prompt", "paraphrase", "locality")  # a case's three prompts, in asking order
ZSRE_EVAL = range(500, 1000)  # records 0-499 are the zsRE training part


@dataclass(frozen=True)
class Case:
    """One edit and the prompts that probe it.

    ``same_subject``: the edited subject asked about *other* relations (templates of
    other relations of the same file); their answers must not change."""

    case_id: str
    edit: Edit
    kind: PromptKind
    prompt: str
    paraphrase: str
    locality: str
    locality_answer: str | None = None  # the neighbourhood prompt's own true answer
    same_subject: tuple[str, ...] = ()

    @property
    def casual(self) -> str:
        """The paraphrase as typed in a hurry (:func:`casual`)."""
        return casual(self.paraphrase)

    def two_turn(self) -> list[Message] | None:
        """The paraphrase as a follow-up: turn 1 names the subject ("Tell me about X."),
        a fixed assistant turn, then the paraphrase with the subject replaced by a
        pronoun (:func:`with_pronoun`); None when the paraphrase does not name it."""
        subject = self.edit.subject or ""
        asked = with_pronoun(self.paraphrase, subject, person=is_person_relation(self.prompt))
        if asked is None:
            return None
        return [
            {"role": "user", "content": OPENER.format(subject)},
            {"role": "assistant", "content": FILLER},
            {"role": "user", "content": asked},
        ]


OPENER = "Tell me about {}."
FILLER = "Sure, what would you like to know?"
# Relations whose subject is a person (CounterFact's and zsRE's wording): "he", else "it".
# The person's gender is not known; the editor reads every personal pronoun alike.
_PERSON = re.compile(
    r"mother tongue|native (?:language|speaker)|citizen|profession|occupation|"
    r"\bworks? (?:as|for|in)\b|employ|\bborn\b|\bdied\b|plays? (?:the )?(?:position|as)|"
    r"\bspeaks?\b|educated|religio|\bspouse\b|married",
    re.IGNORECASE,
)
_BEFORE_OBJECT = re.compile(r"\b(?:of|to|for|with|by|about|from|in|at|on|like|than)\s+$", re.I)


def is_person_relation(prompt: str) -> bool:
    """Whether the edit's own prompt asks a relation of a person."""
    return _PERSON.search(prompt) is not None


def with_pronoun(text: str, subject: str, *, person: bool) -> str | None:
    """``text`` with its first mention of ``subject`` replaced by a pronoun: "X's" →
    "its"/"his", after a preposition "it"/"him", else "it"/"he" (capitalised at a
    sentence's start); None when ``text`` does not name ``subject``."""
    at = text.find(subject) if subject else -1
    if at < 0:
        return None
    end = at + len(subject)
    before, after = text[:at], text[end:]
    if after.startswith(("'s", "\u2019s")):
        word, after = ("his" if person else "its"), after[2:]
    elif _BEFORE_OBJECT.search(before):
        word = "him" if person else "it"
    else:
        word = "he" if person else "it"
    if not before.strip() or before.rstrip().endswith((".", "?", "!", ":")):
        word = word.capitalize()
    return before + word + after


def casual(text: str) -> str:
    """A query as typed in a hurry: lower case, no final "?" or "."."""
    return text.lower().rstrip(" ?.!")


def other_relations(
    by_group: Mapping[int, Sequence[str]], own: int | None, index: int, n: int = 2
) -> list[str]:
    """``n`` templates of relations other than ``own``, chosen by ``index`` (so every
    run asks the same): the same-subject probes."""
    groups = [g for g in sorted(by_group) if g != own]
    if not groups:
        return []
    picked = random.Random(index).sample(groups, min(n, len(groups)))
    return [by_group[g][index % len(by_group[g])] for g in picked]


def sentence_of(case: Case) -> str:
    """The edit as one sentence of new knowledge, as a user would write it: CounterFact's
    prompt filled with the subject and the new object ("The mother tongue of Danielle
    Darrieux is English.")."""
    if case.kind != "cloze":
        raise ValidationError(f"expected a cloze case for a sentence edit, got {case.kind}")
    return f"{case.prompt} {case.edit.target_new}."


def _store_sentences(memory: EditMemory, cases: Sequence[Case]) -> dict[str, dict[str, Any]]:
    """Each case's edit stored only as its sentence (:meth:`EditMemory.add_text`); what was
    read from it, by case id."""
    read = {}
    for case in cases:
        added = memory.add_text(sentence_of(case), source=case.edit.source)
        read[case.case_id] = _read_back(case, added.stored + added.restated)
    return read


def _read_back(case: Case, stored: Sequence[Edit]) -> dict[str, Any]:
    facts = [e for e in stored if e.structured]
    right = any(
        normalise_name(e.subject or "") == normalise_name(case.edit.subject or "")
        and normalise_name(e.target_new or "") == normalise_name(case.edit.target_new or "")
        for e in facts
    )
    return {
        "facts": [[e.subject, e.relation, e.target_new] for e in facts],
        "statement_only": len(facts) < len(stored),
        "right": right,
    }


def counterfact_cases(path: Path, n: int) -> list[Case]:
    """The first ``n`` records of a CounterFact-format file, each with two same-subject
    probes: templates of two other relation groups of the file
    (:func:`~kme_rag.scope.data.relation_groups`) filled with the subject."""
    from kme_rag.scope.data import relation_groups

    every = json.loads(path.read_text(encoding="utf-8"))
    groups = relation_groups(every)
    by_group: dict[int, list[str]] = {}
    for template, group in sorted(groups.items()):
        by_group.setdefault(group, []).append(template)
    cases = []
    for index, r in enumerate(every[:n]):
        edit = counterfact_edit(r, f"bench:{path.name}")
        own = groups.get(edit.prompt or "")
        others = other_relations(by_group, own, index)
        cases.append(
            Case(
                str(r["case_id"]),
                edit,
                "cloze",
                r["prompt"],
                r["rephrase_prompt"],
                r["locality_prompt"],
                r.get("locality_ground_truth"),
                tuple(t.format(r["subject"]) for t in others),
            )
        )
    return cases


def zsre_cases(path: Path, n: int, records: range = ZSRE_EVAL) -> list[Case]:
    """zsRE cases from the evaluation records only (500-999 unless told otherwise).

    Records that are not a valid edit (two in 500-999 have an empty new answer) are
    skipped with a warning, so ``n=500`` yields the 498 valid ones.
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    cases = []
    for i in (i for i in records if i < len(data)):
        try:
            edit = zsre_edit(data[i], f"bench:{path.name}", i)
        except ValidationError as exc:
            log.warning("skipping zsRE record %d: %s", i, exc.message)
            continue
        r = data[i]
        loc_answer = r.get("loc_ans")
        cases.append(
            Case(str(i), edit, "question", r["src"], r["rephrase"], r["loc"], loc_answer or None)
        )
    return cases[:n]


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


@dataclass(frozen=True)
class Probe:
    """One asked prompt: its answer, route and cost."""

    text: str
    route: str
    latency_ms: float
    prompt_tokens: int | None
    read_as: str = ""  # a follow-up as the editor resolved it


@dataclass
class StoredReferences:
    """Unedited answers by question, read from an earlier run (``source``), and what
    :func:`run_cases` did with them: ``reused`` answers read back, ``asked`` live (every
    ``live_every``-th case, and questions the earlier run did not ask), of which
    ``checked`` had a stored answer and ``mismatched`` differed from it."""

    texts: Mapping[str, str]
    source: str
    live_every: int = 4
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("reused", "asked", "checked", "mismatched"), 0)
    )

    def __post_init__(self) -> None:
        if self.live_every < 1:
            raise ValidationError(f"expected live_every >= 1, got {self.live_every}")

    @classmethod
    def load(
        cls, summary: Path, *, dataset: str, model: str, max_tokens: int, live_every: int = 4
    ) -> StoredReferences:
        """The references of ``summary``, the JSON of a ``--method none`` run; it must be
        of ``dataset`` on ``model`` with ``max_tokens``, or the answers are not the same."""
        try:
            meta = json.loads(summary.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValidationError(f"cannot read references {str(summary)!r}: {exc}") from None
        wanted = {"method": "none", "dataset": dataset, "model": model, "max_tokens": max_tokens}
        found = {k: meta.get(k) for k in wanted}
        if found != wanted:
            raise ValidationError(f"expected references from a run with {wanted}, got {found}")
        texts: dict[str, str] = {}
        with (summary.parent / meta["cases_file"]).open(encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                for probe in PROBES:
                    texts[row[probe]["question"]] = row[probe]["reference"]
        return cls(texts, summary.name, live_every)

    def summary(self) -> dict[str, Any]:
        return {"file": self.source, "live_every": self.live_every, **self.counts}


def _raw(backend: Backend, kind: PromptKind, prompt: str, max_tokens: int) -> str:
    if kind == "cloze":
        return backend.complete(prompt, max_tokens=max_tokens)
    message: Message = {"role": "user", "content": prompt}
    return backend.chat([message], max_tokens=max_tokens)


def _timed(call: Callable[[], Answer]) -> tuple[Answer, float]:
    start = time.perf_counter()
    answer = call()
    return answer, (time.perf_counter() - start) * 1000


def _tokens(backend: Backend, sent: str | list[Message]) -> int | None:
    count = getattr(backend, "count_tokens", None)
    if count is None:
        return None
    text = sent if isinstance(sent, str) else "\n".join(m["content"] for m in sent)
    return int(count(text))


def run_cases(
    cases: Sequence[Case],
    backend: Backend,
    memory: EditMemory,
    editor: KnowledgeEditor | None,
    *,
    edits_mode: Literal["one", "all"],
    max_tokens: int,
    stored: StoredReferences | None = None,
    extended: bool = False,
    edits_as: Literal["structured", "sentence"] = "structured",
) -> Iterator[dict[str, Any]]:
    """Ask every prompt of every case, unedited and (with an editor) edited; yield rows.

    ``all`` stores every case's edit before asking anything; ``one`` stores each case's
    edit alone and undoes it afterwards. ``editor=None`` evaluates the unedited model.
    ``stored``: unedited answers read back instead of asked (``reference_ms`` is then
    ``None``), but on every ``stored.live_every``-th case. ``extended`` also asks the
    casual paraphrase (row ``casual``) and the same-subject probes (row
    ``same_subject``, a list), each with its unedited answer from this run.
    ``edits_as="sentence"``: each edit is stored only as its sentence
    (:func:`sentence_of`, read into facts by ``add_text``); row ``read`` says what was
    read from it.
    """
    if stored is not None and editor is None:
        raise ValidationError("expected an editor with stored references (none asks them)")
    conflicts = locality_conflicts(cases) if edits_mode == "all" else set()
    read: dict[str, dict[str, Any]] = {}
    if editor is not None and edits_mode == "all":
        if edits_as == "sentence":
            read = _store_sentences(memory, cases)
        else:
            memory.add_many([c.edit for c in cases])
    for index, case in enumerate(cases):
        live = stored is None or index % stored.live_every == 0
        if editor is not None and edits_mode == "one":
            if edits_as == "sentence":
                read |= _store_sentences(memory, [case])
            else:
                memory.add(case.edit)
        row: dict[str, Any] = {
            "case_id": case.case_id,
            "target_new": case.edit.target_new,
            "target_true": case.edit.target_true,
            "locality_names_stored_subject": case.case_id in conflicts,
        }
        if case.case_id in read:
            row["read"] = read[case.case_id]

        def probe(text: str, case: Case = case, live: bool = live) -> dict[str, Any]:
            reference, ref_ms = _reference(backend, case.kind, text, max_tokens, stored, live)
            result = Probe(reference, "none", ref_ms or 0.0, _tokens(backend, text))
            if editor is not None:
                ask = editor.complete if case.kind == "cloze" else editor.ask
                answer, ms = _timed(lambda: ask(text))
                result = Probe(answer.text, answer.route, ms, _tokens(backend, answer.sent))
            return {"question": text, "reference": reference, "reference_ms": ref_ms} | asdict(
                result
            )

        for name in PROBES:
            row[name] = probe(getattr(case, name))
        if extended:
            row["casual"] = probe(case.casual)
            row["same_subject"] = [probe(text) for text in case.same_subject]
            if (turns := case.two_turn()) is not None:
                row["two_turn"] = _converse(backend, editor, turns, max_tokens)
        if editor is not None and edits_mode == "one":
            memory.undo()
        yield row


def _converse(
    backend: Backend, editor: KnowledgeEditor | None, turns: list[Message], max_tokens: int
) -> dict[str, Any]:
    """A conversation asked unedited and (with an editor) through ``editor.chat``."""
    start = time.perf_counter()
    reference = backend.chat(turns, max_tokens=max_tokens)
    ref_ms = (time.perf_counter() - start) * 1000
    result = Probe(reference, "none", ref_ms, None)
    if editor is not None:
        answer, ms = _timed(lambda: editor.chat(turns))
        result = Probe(
            answer.text, answer.route, ms, _tokens(backend, answer.sent), answer.question
        )
    asked = {"question": turns[-1]["content"], "turns": turns}
    return asked | {"reference": reference, "reference_ms": ref_ms} | asdict(result)


def _reference(
    backend: Backend,
    kind: PromptKind,
    text: str,
    max_tokens: int,
    stored: StoredReferences | None,
    live: bool,
) -> tuple[str, float | None]:
    """The unedited answer to ``text`` and its latency (``None`` when read back)."""
    known = None if stored is None else stored.texts.get(text)
    if stored is not None and known is not None and not live:
        stored.counts["reused"] += 1
        return known, None
    start = time.perf_counter()
    reference = _raw(backend, kind, text, max_tokens)
    ms = (time.perf_counter() - start) * 1000
    if stored is not None:
        stored.counts["asked"] += 1
        if known is not None:
            stored.counts["checked"] += 1
            stored.counts["mismatched"] += reference != known
    return reference, ms


def locality_conflicts(cases: Sequence[Case]) -> set[str]:
    """Cases whose locality prompt names the subject of *another* case's edit.

    With every edit stored at once, such a prompt is no longer unrelated: CounterFact's
    neighbourhood prompt "Windows 98, a product of" becomes in scope when another case
    edits Windows 98's maker. Decided from the data alone, never from the editor.
    """
    from kme_rag.scope.base import mentions_subject

    return {
        case.case_id
        for case in cases
        if any(
            other.case_id != case.case_id and mentions_subject(case.locality, other.edit)
            for other in cases
        )
    }


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Metrics, counts, latency and token figures from :func:`run_cases` rows."""
    n = len(rows)

    def hit(probe: str) -> list[bool]:
        return [contains_answer(r[probe]["text"], r["target_new"]) for r in rows]

    same = [r["locality"]["text"] == r["locality"]["reference"] for r in rows]
    clean = [
        s for s, r in zip(same, rows, strict=True) if not r.get("locality_names_stored_subject")
    ]
    leak = [contains_answer(r["locality"]["text"], r["target_new"]) for r in rows]
    probes = [r[p] for r in rows for p in PROBES]
    in_scope = [p for p in probes if p["route"] not in ("passthrough", "none")]
    out_scope = [p for p in probes if p["route"] in ("passthrough", "none")]

    def ratio(group: list[dict[str, Any]]) -> float | None:
        paired = [p for p in group if p["reference_ms"] is not None]  # both timed here
        if not paired:
            return None
        base = statistics.median(float(p["reference_ms"]) for p in paired)
        return round(statistics.median(float(p["latency_ms"]) for p in paired) / base, 3)

    extra = _extended(rows)
    tokens = [p["prompt_tokens"] for p in probes if p["prompt_tokens"] is not None]
    latencies = [p["latency_ms"] for p in probes]
    unedited_ms = [p["reference_ms"] for p in probes if p["reference_ms"] is not None]
    return {
        "metrics": {
            "efficacy": round(sum(hit("prompt")) / n, 4) if n else 0.0,
            "generality": round(sum(hit("paraphrase")) / n, 4) if n else 0.0,
            "locality": round(sum(same) / n, 4) if n else 0.0,
            "locality_leak": round(sum(leak) / n, 4) if n else 0.0,
            # a diagnostic, not a result: with a subject gate, a prompt that names no
            # stored subject cannot change
            "locality_unrelated": round(sum(clean) / len(clean), 4) if clean else 0.0,
            **extra["metrics"],
        },
        "counts": {
            "cases": n,
            "efficacy": sum(hit("prompt")),
            "generality": sum(hit("paraphrase")),
            "locality_same": sum(same),
            "locality_leak": sum(leak),
            "locality_unrelated_cases": len(clean),
            "locality_unrelated_same": sum(clean),
            "routed_in_scope": len(in_scope),
            "routed_out_of_scope": len(out_scope),
            **extra["counts"],
        },
        "latency_ms": {
            "p50": round(percentile(latencies, 0.5), 1),
            "p95": round(percentile(latencies, 0.95), 1),
            "unedited_p50": round(percentile(unedited_ms, 0.5), 1),
            "in_scope_ratio_p50": ratio(in_scope),
            "out_of_scope_ratio_p50": ratio(out_scope),
            # the in-scope ratio compares answers of different lengths: both stated
            "in_scope_answer_chars_p50": _chars([p["text"] for p in in_scope]),
            "in_scope_unedited_chars_p50": _chars([p["reference"] for p in in_scope]),
        },
        "prompt_tokens_per_question": round(statistics.mean(tokens), 1) if tokens else None,
    }


def _read_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """For sentence edits: the share of sentences read into the case's fact (subject and
    new object; a diagnostic of the reader, not an answer metric)."""
    read = [r["read"] for r in rows if "read" in r]
    if not read:
        return {}
    return {
        "read": {
            "sentences": len(read),
            "fact_right": round(sum(r["right"] for r in read) / len(read), 4),
            "no_fact": sum(not r["facts"] for r in read),
        }
    }


def _chars(texts: Sequence[str]) -> float | None:
    return round(statistics.median(len(t.strip()) for t in texts), 1) if texts else None


def _extended(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The figures of the extended probes, where the rows have them: casual generality,
    same-subject locality (identical answers) and leak, and the stale rate (the old
    object stated in an answer to the prompt, the paraphrase or the casual paraphrase)."""
    metrics: dict[str, Any] = {}
    counts: dict[str, Any] = {}
    casual_rows = [r for r in rows if "casual" in r]
    if casual_rows:
        hits = sum(contains_answer(r["casual"]["text"], r["target_new"]) for r in casual_rows)
        metrics["generality_casual"] = round(hits / len(casual_rows), 4)
        counts |= {"casual": len(casual_rows), "generality_casual": hits}
    same = [(p, r) for r in rows for p in r.get("same_subject", ())]
    if same:
        kept = sum(p["text"] == p["reference"] for p, _ in same)
        leaks = sum(
            contains_answer(p["text"], r["target_new"])
            and not contains_answer(p["reference"], r["target_new"])
            for p, r in same
        )
        metrics["locality_same_subject"] = round(kept / len(same), 4)
        metrics["locality_same_subject_leak"] = round(leaks / len(same), 4)
        counts |= {"same_subject": len(same), "same_subject_kept": kept, "same_subject_leak": leaks}
    asked = [
        (r[name], r)
        for r in rows
        if r.get("target_true")
        for name in ("prompt", "paraphrase", "casual")
        if name in r
    ]
    follow_ups = [r for r in rows if "two_turn" in r]
    if follow_ups:
        hits = sum(contains_answer(r["two_turn"]["text"], r["target_new"]) for r in follow_ups)
        single = sum(contains_answer(r["paraphrase"]["text"], r["target_new"]) for r in follow_ups)
        metrics["generality_two_turn"] = round(hits / len(follow_ups), 4)
        # of the same cases' single-turn paraphrase figure (the issue's ">= 90%" ratio)
        metrics["two_turn_of_single"] = round(hits / single, 4) if single else None
        resolved = sum(bool(r["two_turn"].get("read_as")) for r in follow_ups)
        counts |= {
            "two_turn": len(follow_ups),
            "generality_two_turn": hits,
            "two_turn_single_hits": single,
            "two_turn_resolved": resolved,
        }
    if asked and casual_rows:
        stale = sum(contains_answer(p["text"], r["target_true"]) for p, r in asked)
        metrics["stale"] = round(stale / len(asked), 4)
        counts |= {"stale_asked": len(asked), "stale": stale}
    return {"metrics": metrics, "counts": counts}


Method = Literal["none", "ike", "kme"]
Dataset = Literal["counterfact", "zsre"]


def build_editor(
    method: Method,
    backend: Backend,
    memory: EditMemory,
    data_dir: Path,
    *,
    max_tokens: int,
    ike_demos: int = 4,
    scope: Literal["classifier", "similarity"] = "classifier",
    answer: Literal["prefill", "generate"] = "prefill",
) -> KnowledgeEditor | None:
    """The editor each method names: none (unedited), ike (ungated IKE), kme (default,
    with the trained scope classifier or the similarity baseline)."""
    from kme_rag.editor import EditorParams
    from kme_rag.ike import DemoPool, IKEParams
    from kme_rag.scope.similarity import SimilarityScope

    if method == "none":
        return None
    if method == "kme":
        baseline = SimilarityScope() if scope == "similarity" else None
        params = EditorParams(max_tokens=max_tokens, answer=answer)
        return KnowledgeEditor(backend, memory, scope=baseline, params=params)
    pool = DemoPool.from_file(
        data_dir / "counterfact" / "counterfact-train.json", memory.embedder, limit=2000
    )
    copy = max(1, ike_demos // 8)
    update = max(1, (ike_demos * 3) // 8)
    params = EditorParams(
        gate=False,
        answer="generate",
        max_tokens=max_tokens,
        ike=IKEParams(k_copy=copy, k_update=update, k_retain=max(0, ike_demos - copy - update)),
    )
    return KnowledgeEditor(backend, memory, demos=pool, params=params)


def load_cases(dataset: Dataset, data_dir: Path, n: int, data: Path | None) -> list[Case]:
    if dataset == "counterfact":
        return counterfact_cases(data or data_dir / "counterfact" / "counterfact-edit.json", n)
    return zsre_cases(data or data_dir / "zsre" / "zsre_mend_train-1k.json", n)


@dataclass(frozen=True, kw_only=True)
class MemoryRun:
    """One ``kme bench counterfact|zsre`` run of a memory method (none, ike, kme)."""

    dataset: Dataset
    method: Method
    n: int
    edits_mode: Literal["one", "all"] = "all"
    max_tokens: int = 16
    ike_demos: int = 4
    scope: Literal["classifier", "similarity"] = "classifier"
    data: Path | None = None  # another file of the dataset's format
    references: Path | None = None  # a --method none result whose answers are reused
    answer: Literal["prefill", "generate"] = "prefill"  # kme: prefill the new object or not
    extended: bool = True  # also the casual paraphrase and the same-subject probes
    edits_as: Literal["structured", "sentence"] = "structured"  # sentence: add_text only


def bench_memory(settings: Settings, run: MemoryRun, out: Path) -> dict[str, Any]:
    """Run ``run`` on a fresh scratch store and write ``out`` and its rows."""
    import tempfile

    from kme_rag.backends import make_backend
    from kme_rag.bench.output import CaseRows, write_result

    cases = load_cases(run.dataset, settings.data_dir, run.n, run.data)
    backend = make_backend(settings)
    stored = None
    if run.references is not None:
        stored = StoredReferences.load(
            run.references, dataset=run.dataset, model=backend.name, max_tokens=run.max_tokens
        )
    store = Path(tempfile.mkdtemp(prefix="kme-bench-"))
    memory = EditMemory.open(settings.model_copy(update={"store": store, "chroma_url": None}))
    editor = build_editor(
        run.method,
        backend,
        memory,
        settings.data_dir,
        max_tokens=run.max_tokens,
        ike_demos=run.ike_demos,
        scope=run.scope,
        answer=run.answer,
    )
    asked = run_cases(
        cases,
        backend,
        memory,
        editor,
        edits_mode=run.edits_mode,
        max_tokens=run.max_tokens,
        stored=stored,
        extended=run.extended,
        edits_as=run.edits_as,
    )
    with CaseRows(out, len(cases)) as table:
        rows = table.extend(asked)
    summary = {
        "dataset": run.dataset,
        "method": run.method,
        "scope": run.scope if run.method == "kme" else None,
        "answer": run.answer if run.method == "kme" else None,
        "model": backend.name,
        "n": len(rows),
        "edits_mode": run.edits_mode,
        "edits_as": run.edits_as,
        "max_tokens": run.max_tokens,
        **summarise(rows),
        **_read_summary(rows),
        "references": None if stored is None else stored.summary(),
    }
    return write_result(out, summary, table)
