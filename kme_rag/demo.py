"""``kme demo``: the local model before and after counterfactual edits.

Opens an embedded store in a fresh temporary folder (or the one given with ``--store``),
asks the bundled Gemma model a few factual questions, stores counterfactual edits, and
shows what the memory holds (the edits, their history, the fact graph), then asks the
same questions again through the :class:`KnowledgeEditor`: before and after side by side,
with the route each answer took and the edits it used — including multi-hop questions
walked over the fact graph (Eiffel Tower → Rome → Italy), hop by hop.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kme_rag.backends import make_backend
from kme_rag.editor import KnowledgeEditor
from kme_rag.memory.edit import Edit, parse_edit
from kme_rag.memory.store import EditMemory
from kme_rag.multihop.walk import build_walker
from kme_rag.settings import Settings

__all__ = ["DEMO_EDITS", "DEMO_QUESTIONS", "run_demo"]

DEMO_QUESTIONS = (
    "In which city is the Eiffel Tower located?",
    "What is the capital of Japan?",
    "What is the capital of France?",
    "Where is the Louvre now?",
    "Which country is the Eiffel Tower in?",
    "What is the capital of the country where the Eiffel Tower is?",
)

DEMO_EDITS: tuple[dict[str, object], ...] = (
    {
        "subject": "Eiffel Tower",
        "relation": "{} is located in the city of",
        "target_new": "Rome",
        "target_true": "Paris",
        "subject_aliases": ["the Eiffel tower", "Tour Eiffel"],
    },
    {"subject": "Japan", "relation": "capital", "target_new": "Kyoto", "target_true": "Tokyo"},
    {"subject": "Rome", "relation": "{} is located in the country of", "target_new": "Italy"},
)


def run_demo(settings: Settings, *, use_settings_store: bool = False) -> None:
    console = Console(highlight=False)
    folder = settings.store if use_settings_store else Path(tempfile.mkdtemp(prefix="kme-demo-"))
    settings = settings.model_copy(update={"store": folder})
    console.print(f"[bold]Edit store[/bold]: embedded Chroma at {folder}")
    memory = EditMemory.open(settings)
    backend = make_backend(settings)

    console.print(f"[bold]Model[/bold]: {backend.name} (greedy decoding)\n")
    before = {}
    for question in DEMO_QUESTIONS:
        start = time.perf_counter()
        before[question] = backend.chat([{"role": "user", "content": question}])
        took = time.perf_counter() - start
        console.print(f"Q: {question}\nA: {escape(before[question])}  [dim]({took:.2f} s)[/dim]")

    console.print("\n[bold]Adding counterfactual edits[/bold]")
    for edit in memory.add_many([parse_edit(fields) for fields in DEMO_EDITS]):
        console.print(f"  + {edit.id}  {edit.statement}")
    renamed = memory.add(
        Edit(subject="Japan", relation="capital", target_new="Osaka", target_true="Tokyo")
    )
    console.print(f"  + {renamed.id}  {renamed.statement}  (supersedes {renamed.supersedes})")
    news = "The Louvre moved to Lyon in 2026."
    added = memory.add_text(news)
    console.print(f"  + free text: {news!r}, understood as:")
    for edit in added.stored:
        fact = f"{edit.subject} | {edit.relation} | {edit.target_new}"
        console.print(escape(f"      {edit.id}  {fact}  →  {edit.statement}"))

    console.print("\n[bold]History of (Japan, capital)[/bold]")
    for edit in memory.history("Japan", "capital"):
        console.print(f"  {edit.created_at:%H:%M:%S.%f}  {edit.target_new}  ({edit.status})")

    console.print("\n[bold]Fact graph[/bold] (derived from the active edits)")
    for u, v, data in memory.graph.graph.edges(data=True):
        console.print(escape(f"  {u} --[{data['relation']}]--> {v}"))
    chain = next(memory.graph.paths("Tour Eiffel", "Italy"), [])
    console.print("  path Tour Eiffel → Italy: " + " ; ".join(e.statement for e in chain))

    editor = KnowledgeEditor(backend, memory, multihop=build_walker(settings, backend, memory))
    table = Table(title="The same questions before and after the edits")
    table.add_column("question")
    table.add_column("before (unedited model)")
    table.add_column("after (through the editor)")
    table.add_column("route: edits used")
    hops: list[str] = []
    for question in DEMO_QUESTIONS:
        after = editor.ask(question)
        used = ", ".join(e.statement for e in after.edits) or "-"
        if after.hops:
            trace = " → ".join(f"{h.question} {h.answer} [{h.source}]" for h in after.hops)
            hops.append(f"  {question}\n    {trace}")
        table.add_row(
            question, escape(before[question]), escape(after.text), f"{after.route}: {used}"
        )
    console.print()
    console.print(table)
    if hops:
        console.print("\n[bold]Multi-hop answers, hop by hop[/bold]")
        console.print(escape("\n".join(hops)))

    undone = memory.undo()
    console.print(
        f"\n[bold]Undo[/bold] of the last change removed {escape(str(list(undone.removed)))}"
    )
    console.print(f"Active edits now: {len(memory)}")
