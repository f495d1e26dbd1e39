"""``kme bench scale``: the edit memory at 10k, 100k (and, as a long run, 1M) edits.

One store grows through the sizes asked. The first ``cases`` records of CounterFact's
evaluation split are stored first and probed at every size; the rest of each size is
*filler*, in this order until the size is reached:

1. CounterFact's training records, then its evaluation records after the probed ones;
2. ParaRel's T-REx subject/object pairs, each as an edit of its relation's first cloze
   pattern ("[X] is located in [Y] ." → relation "{} is located in");
3. generated entities: for each T-REx relation in turn, a subject made of the first word
   of one of that relation's T-REx subjects and the other words of another ("Simcoe
   Composite School" + "Eibenstock" → "Eibenstock Composite School"; single-word
   subjects get a numbered second word), and an object drawn from the relation's T-REx
   objects, so names and objects look like the real ones (seeded, so every run builds
   the same store).

A filler whose subject is a probed case's subject, or is named in one of its probes (a
neighbourhood prompt's subject), is left out: it would make that probe a question about
a stored edit, which the editor should then change.

Measured at each size, on this machine:

- **import**: edits/s of ``EditMemory.add_many`` in batches (what ``kme edit import``
  runs), beside the embedder's own batched rate measured in the same run;
- **open**: a cold process opening the store (``EditMemory.open``) from its graph
  snapshot (median of ``repeats``) and once rebuilt from every record (snapshot moved
  aside), with the process's peak RSS after opening and planning a few questions (no
  model loaded);
- **retrieval + scope**: ``retrieve_ms + scope_ms`` of the editor's plan for every probe
  (p50/p95), and the whole plan;
- **quality**: each probe's route (paraphrases and casual ones in scope with their edit;
  neighbours and same-subject questions passing through) — *routing diagnostics* — and
  the answer-level locality: a probe that passes through is sent exactly as typed (its
  answer is the unedited one), every other one is answered through the editor and
  compared with the unedited model's answer (identical = kept).
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kme_rag.bench.harness import (
    Case,
    casual,
    counterfact_cases,
    locality_conflicts,
    percentile,
)
from kme_rag.errors import ValidationError
from kme_rag.memory.edit import Edit, parse_edit
from kme_rag.memory.formats import counterfact_edit
from kme_rag.memory.mention import name_tokens
from kme_rag.settings import Settings

if TYPE_CHECKING:
    from kme_rag.backends import Backend
    from kme_rag.editor import KnowledgeEditor

__all__ = ["ScaleRun", "bench_scale", "filler", "markdown"]

log = logging.getLogger(__name__)

_BATCH = 5000  # edits per add_many call: one change each, as an import of that size

OPEN_SNIPPET = """
import json, sys, time
start = time.perf_counter()
from kme_rag.memory.store import EditMemory
from kme_rag.settings import Settings
settings = Settings.model_validate_json(sys.argv[1])
memory = EditMemory.open(settings)
opened = time.perf_counter() - start
from kme_rag.editor import KnowledgeEditor
editor = KnowledgeEditor(None, memory)  # planning only: no model is loaded
for question in json.loads(sys.argv[2]):
    editor.plan_completion(question)
rss = max(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"open_s": opened, "facts": len(memory.graph), "peak_rss_mb": rss / 1024}))
"""


@dataclass(frozen=True, kw_only=True)
class ScaleRun:
    """One ``kme bench scale`` run."""

    sizes: tuple[int, ...] = (10_000, 100_000)
    cases: int = 200
    repeats: int = 3
    answers: bool = True  # answer the probes not passing through (the model runs)


def _cloze_pattern(patterns: Path) -> str | None:
    """The relation's first ParaRel pattern that ends in its object, as a template."""
    for line in patterns.read_text(encoding="utf-8").splitlines():
        pattern = str(json.loads(line)["pattern"]).strip()
        head = pattern.removesuffix(".").strip()
        if head.endswith("[Y]") and head.count("[X]") == 1 and "[Y]" not in head[:-3]:
            return head[:-3].strip().replace("[X]", "{}")
    return None


def _trex(data_dir: Path) -> list[tuple[str, list[tuple[str, str]]]]:
    """(template, [(subject, object)]) of every T-REx relation with a cloze pattern."""
    out = []
    for pairs in sorted((data_dir / "pararel" / "trex").glob("P*.jsonl")):
        patterns = data_dir / "pararel" / "patterns" / pairs.name
        template = _cloze_pattern(patterns) if patterns.is_file() else None
        if template is None:
            continue
        rows = [json.loads(line) for line in pairs.read_text(encoding="utf-8").splitlines()]
        out.append((template, [(r["sub_label"], r["obj_label"]) for r in rows]))
    return out


def _edit(subject: str, template: str, target: str, source: str) -> Edit:
    return parse_edit(
        {
            "subject": subject,
            "relation": template,
            "prompt": template,
            "target_new": target,
            "source": source,
        }
    )


def filler(data_dir: Path, exclude: set[str], skip_eval: int, seed: int = 0) -> Iterator[Edit]:
    """The filler edits, in the module docstring's order, without end; none whose
    subject's word tokens (space-joined, :func:`_name`) are in ``exclude``."""
    cf = data_dir / "counterfact"
    train = json.loads((cf / "counterfact-train.json").read_text(encoding="utf-8"))
    evaluation = json.loads((cf / "counterfact-edit.json").read_text(encoding="utf-8"))
    for name, records in (("train", train), ("eval", evaluation[skip_eval:])):
        for record in records:
            if _name(record["subject"]) not in exclude:
                yield counterfact_edit(record, f"scale:counterfact-{name}")
    relations = _trex(data_dir)
    for template, pairs in relations:
        for subject, target in pairs:
            if _name(subject) not in exclude:
                yield _edit(subject, template, target, "scale:trex")
    rng = random.Random(seed)
    seen: set[object] = set()
    number = 0
    while True:
        for template, pairs in relations:
            first = pairs[rng.randrange(len(pairs))][0].split()
            rest = pairs[rng.randrange(len(pairs))][0].split()
            tail = rest[1:] if len(rest) > 1 else [f"{rest[0]}-{number}"]
            subject = " ".join([first[0], *tail])
            target = pairs[rng.randrange(len(pairs))][1]
            edit = _edit(subject, template, target, "scale:generated")
            if edit.key in seen or _name(subject) in exclude:
                continue  # the same (subject, relation) would supersede the first
            seen.add(edit.key)
            number += 1
            yield edit


def _probes(case: Case, conflicts: set[str]) -> list[tuple[str, str]]:
    """(kind, text) of a case's probes; no neighbour when it names another probed case's
    subject (:func:`~kme_rag.bench.harness.locality_conflicts`: then it should change)."""
    return [
        ("prompt", case.prompt),
        ("paraphrase", case.paraphrase),
        ("casual", casual(case.paraphrase)),
        *([] if case.case_id in conflicts else [("neighbour", case.locality)]),
        *[("same_subject", q) for q in case.same_subject],
    ]


def _open_cold(settings: Settings, questions: Sequence[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", OPEN_SNIPPET, settings.model_dump_json(), json.dumps(questions)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _embed_rate(embedder: Any, statements: Sequence[str]) -> float:
    embedder.embed(statements[:64])  # loaded and warm
    start = time.perf_counter()
    embedder.embed(statements)
    return len(statements) / (time.perf_counter() - start)


def bench_scale(settings: Settings, run: ScaleRun, data_dir: Path) -> dict[str, Any]:
    """Grow one fresh store of ``settings`` through ``run.sizes``, measuring each."""
    from kme_rag.backends import make_backend
    from kme_rag.editor import KnowledgeEditor
    from kme_rag.memory.embedder import MiniLMEmbedder
    from kme_rag.memory.store import EditMemory, snapshot_folder

    cases = counterfact_cases(data_dir / "counterfact" / "counterfact-edit.json", run.cases)
    conflicts = locality_conflicts(cases)
    probes = [(case, kind, text) for case in cases for kind, text in _probes(case, conflicts)]
    exclude = {_name(c.edit.subject or "") for c in cases} | _named(t for _, _, t in probes)
    source = filler(data_dir, exclude, skip_eval=run.cases)
    embedder = MiniLMEmbedder.from_settings(settings)
    memory = EditMemory.open(settings, embedder=embedder)
    if memory.edits(status=None):
        raise ValidationError(f"the scale benchmark needs an empty store, not {settings.store}")
    backend = make_backend(settings)
    editor = KnowledgeEditor.from_settings(settings, memory, backend=backend)  # as kme ask
    unedited: dict[str, str] = {}
    every = filler(data_dir, exclude, skip_eval=run.cases)
    sample = [e.statement for e in itertools.islice(every, 0, 16 * 4096, 16)]  # each kind

    pending: list[Edit] = [c.edit for c in cases]
    stored = 0
    results = []
    for size in run.sizes:
        embed_rate = _embed_rate(embedder, sample)
        start = time.perf_counter()
        imported = 0
        while stored < size:
            batch = pending[: size - stored] if pending else []
            pending = pending[len(batch) :]
            while len(batch) < min(_BATCH, size - stored):
                batch.append(next(source))
            memory.add_many(batch)
            stored += len(batch)
            imported += len(batch)
        import_s = time.perf_counter() - start
        results.append(
            {
                "size": size,
                "stored": stored,
                "active": len(memory.graph),
                "import": {
                    "edits": imported,
                    "seconds": round(import_s, 1),
                    "edits_per_s": round(imported / import_s, 1),
                    "embedder_batched_per_s": round(embed_rate, 1),
                    "ratio": round(imported / import_s / embed_rate, 3),
                },
                "open": _opens(settings, snapshot_folder(settings), probes, run.repeats),
                **_probe(editor, backend, probes, unedited, run),
            }
        )
        done = results[-1]
        log.info("%s", json.dumps({k: done[k] for k in ("size", "import", "open", "decision_ms")}))
    kind = "chroma server" if settings.chroma_url else "embedded"
    return {
        "kind": "scale",
        "dataset": f"store:{kind}",
        "store": kind,
        "run": asdict(run),
        "cases": len(cases),
        "probes": len(probes),
        "neighbours_left_out": len(conflicts),
        "sizes": results,
    }


def _named(texts: Iterator[str]) -> set[str]:
    """Every run of up to eight word tokens of ``texts`` (:func:`~kme_rag.memory.mention.
    name_tokens`, space-joined): the names they may hold, as :func:`_name` writes them."""
    out: set[str] = set()
    for text in texts:
        words = name_tokens(text)
        for n in range(1, 9):
            out.update(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
    return out


def _name(subject: str) -> str:
    return " ".join(name_tokens(subject))


def _opens(
    settings: Settings, snapshots: Path, probes: Sequence[tuple[Case, str, str]], repeats: int
) -> dict[str, Any]:
    """Cold opens from the snapshot (none below ``SNAPSHOT_MIN`` edits: then rebuilt) and
    one with the snapshot moved aside."""
    questions = [text for _, _, text in probes[:20]]
    had = snapshots.is_dir() and any(snapshots.iterdir())
    warm = [_open_cold(settings, questions) for _ in range(repeats)]
    aside = snapshots.with_name(snapshots.name + ".aside")
    if had:
        shutil.move(snapshots, aside)
    try:
        rebuilt = _open_cold(settings, questions)  # (its time includes saving a snapshot)
    finally:
        if had:
            shutil.rmtree(snapshots, ignore_errors=True)  # keep the first one
            shutil.move(aside, snapshots)
    return {
        "snapshot": had,
        "from_snapshot_s": round(statistics.median(o["open_s"] for o in warm), 2),
        "first_from_snapshot_s": round(warm[0]["open_s"], 2),  # catches up what came after it
        "rebuilt_s": round(rebuilt["open_s"], 2),
        "peak_rss_mb": round(max(o["peak_rss_mb"] for o in warm), 1),
        "peak_rss_rebuilt_mb": round(rebuilt["peak_rss_mb"], 1),
        "facts": warm[0]["facts"],
    }


def _probe(
    editor: KnowledgeEditor,
    backend: Backend,
    probes: Sequence[tuple[Case, str, str]],
    unedited: dict[str, str],
    run: ScaleRun,
) -> dict[str, Any]:
    decide: list[float] = []
    plan_ms: list[float] = []
    routed: dict[str, list[bool]] = {}
    kept: dict[str, list[bool]] = {}
    changed: list[dict[str, str]] = []
    for case, kind, text in probes:
        start = time.perf_counter()
        plan = editor.plan_completion(text)
        plan_ms.append((time.perf_counter() - start) * 1000)
        decide.append(plan.timings_ms.get("retrieve_ms", 0) + plan.timings_ms.get("scope_ms", 0))
        if kind in ("prompt", "paraphrase", "casual"):
            routed.setdefault(kind, []).append(_same_key(case, plan))
            continue
        passes = plan.route == "passthrough"
        routed.setdefault(kind, []).append(passes)
        if passes or not run.answers:
            kept.setdefault(kind, []).append(passes)
            continue
        if text not in unedited:  # as long an answer as the editor's
            unedited[text] = backend.complete(text, max_tokens=editor.params.max_tokens)
        answer = editor.complete(text).text
        same = answer.strip() == unedited[text].strip()
        kept.setdefault(kind, []).append(same)
        if not same:
            applied = "; ".join(f"{e.subject} / {e.relation} -> {e.target_new}" for e in plan.edits)
            changed.append(
                {
                    "kind": kind,
                    "probe": text,
                    "route": plan.route,
                    "edits": applied,
                    "answer": answer,
                }
            )
    return {
        "decision_ms": {
            "p50": round(percentile(decide, 0.5), 2),
            "p95": round(percentile(decide, 0.95), 2),
        },
        "plan_ms": {
            "p50": round(percentile(plan_ms, 0.5), 2),
            "p95": round(percentile(plan_ms, 0.95), 2),
        },
        "routed": {k: round(sum(v) / len(v), 4) for k, v in routed.items()},
        "locality": {k: round(sum(v) / len(v), 4) for k, v in kept.items()},
        "changed": changed,
        "rss_mb_bench_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _same_key(case: Case, plan: Any) -> bool:
    """Whether the plan applies an edit of the case's own (subject, relation)."""
    return any(e.key == case.edit.key for e in plan.edits)


def markdown(result: dict[str, Any]) -> str:
    """The result as the Markdown table committed beside its JSON."""
    from kme_rag.report.tables import scale_rows

    sizes = result["sizes"]
    rows = scale_rows(sizes)
    head = " | ".join(f"{s['size']:,}" for s in sizes)
    lines = [
        f"# The edit memory at scale ({result['store']} store)",
        "",
        f"- command: `{result['command']}`",
        f"- date: {result['date']}",
        f"- machine: {json.dumps(result['machine'])}",
        f"- probed: {result['cases']} CounterFact evaluation cases, {result['probes']} probes "
        "(prompt, paraphrase, casual paraphrase, neighbour, two same-subject questions; "
        f"{result.get('neighbours_left_out', 0)} neighbours left out for naming another "
        "probed case's subject), stored first; the rest filler (`kme_rag/bench/scale.py`'s "
        "docstring says how).",
        "",
        f"| figure | {head} |",
        "|---|" + "---:|" * len(sizes),
        *["| " + " | ".join(row) + " |" for row in rows],
        "",
        "Locality counts a probe kept when its plan passes it through (sent as typed: the "
        "unedited answer) or when the editor's answer is identical to the unedited model's; "
        "*routed* rows are routing diagnostics, not answers.",
    ]
    for s in sizes:
        for change in s["changed"][:10]:
            lines.append(
                f"- {s['size']:,}: {change['kind']} {change['probe']!r} "
                f"({change['route']}: {change.get('edits', '')}) → {change['answer']!r}"
            )
    return "\n".join(lines) + "\n"
