"""Graph-guided multi-hop answering on a real store, embedder and relation bank.

The model is scripted here (its answers are the subject of the slow test at the end):
what is tested is which hops come from edits, known facts or the model, and what each
single-hop call sends.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from kme_rag.backends import CallableBackend, LlamaCppBackend
from kme_rag.bench.mquake import known_facts
from kme_rag.editor import KnowledgeEditor
from kme_rag.memory.edit import parse_edit
from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.memory.graph import FactGraph
from kme_rag.memory.store import EditMemory
from kme_rag.multihop.hops import RelationPrompts
from kme_rag.multihop.relations import RelationBank, infer_chain
from kme_rag.multihop.walk import GraphWalker, WalkParams, build_walker
from kme_rag.scope.classifier import TrainedScope
from kme_rag.settings import Settings

EIFFEL = {"subject": "Eiffel Tower", "relation": "{} is located in the city of"}
ROME = {"subject": "Rome", "relation": "{} is located in the country of", "target_new": "Italy"}


@pytest.fixture(scope="module")
def bank(data_dir: Path, embedder: MiniLMEmbedder) -> RelationBank:
    return RelationBank.from_mquake(data_dir, embedder)


@pytest.fixture
def memory(tmp_path: Path, embedder: MiniLMEmbedder) -> EditMemory:
    return EditMemory.open(Settings(store=tmp_path / "store"), embedder=embedder)


def recording(reply: str) -> tuple[CallableBackend, list[str]]:
    sent: list[str] = []

    def complete(prompt: str) -> str:
        sent.append(prompt)
        return reply

    return CallableBackend(complete), sent


def walker(
    backend: CallableBackend,
    memory: EditMemory,
    bank: RelationBank,
    data_dir: Path,
    known: FactGraph | None = None,
) -> GraphWalker:
    prompts = RelationPrompts.load(data_dir)
    scope = TrainedScope(memory.embedder)
    return GraphWalker(backend, memory, bank, prompts, scope, known=known, params=WalkParams())


def test_chain_inference_orders_the_relations_of_a_nested_question(bank: RelationBank) -> None:
    two = infer_chain(bank, "What is the capital of the country of citizenship of X?")
    assert two[0].ids == ("P27", "P36")
    assert infer_chain(bank, "Which country is X located in?")[0].ids == ("P17",)
    assert len({c.ids for c in two}) == len(two)  # distinct candidates, best first
    assert all(a.score >= b.score for a, b in pairwise(two))


def test_edit_templates_map_to_bank_relations_or_become_their_own(bank: RelationBank) -> None:
    citizen = parse_edit({"subject": "A", "relation": "{} is a citizen of", "target_new": "B"})
    assert bank.relation_of(citizen) == "P27"
    city = parse_edit({**EIFFEL, "target_new": "Rome"})
    assert bank.relation_of(city) is None  # as close to P17 as to P131: neither
    assert bank.add_edits([city]) == 1 and bank.add_edits([city]) == 0
    own = bank.relation_of(city)
    assert own is not None and bank.relations[own].phrase == "the city [X] is located in"
    labelled = parse_edit(
        {"subject": "A", "relation": "x", "relation_id": "P36", "target_new": "C"}
    )
    assert bank.relation_of(labelled) == "P36"


def test_walk_takes_edited_hops_from_the_graph_and_asks_the_model_the_rest(
    memory: EditMemory, bank: RelationBank, data_dir: Path
) -> None:
    edit = memory.add(
        parse_edit(
            {
                "subject": "Ellie Kemper",
                "relation": "{} is a citizen of",
                "relation_id": "P27",
                "target_new": "Croatia",
            }
        )
    )
    backend, sent = recording(" Zagreb\n")
    result = walker(backend, memory, bank, data_dir).answer(
        "What is the capital of the country that Ellie Kemper is a citizen of?"
    )
    assert result.method == "graph" and result.subject == "Ellie Kemper"
    assert result.chain == ("P27", "P36") and result.text == "Zagreb"
    first, second = result.hops
    assert (first.answer, first.source, first.edit_id) == ("Croatia", "edit", edit.id)
    assert (second.question, second.source) == ("What is the capital of Croatia?", "model")
    # one short call: four answered capital questions, then this hop's
    assert len(sent) == 1 and sent[0].count("Q: What is the capital of") == 5
    assert sent[0].endswith("Q: What is the capital of Croatia? A:")
    assert result.edits_used == [edit.id]


def test_known_facts_answer_hops_before_the_model(
    memory: EditMemory, bank: RelationBank, data_dir: Path
) -> None:
    memory.add(parse_edit({"subject": "Ellie Kemper", "relation": "{} is a citizen of",
                           "relation_id": "P27", "target_new": "Croatia"}))  # fmt: skip
    fact = parse_edit(
        {"subject": "Croatia", "relation": "capital", "relation_id": "P36", "target_new": "Zagreb"}
    )

    def no_model(prompt: str) -> str:
        raise AssertionError(f"the model was asked: {prompt!r}")

    known = FactGraph([fact])
    result = walker(CallableBackend(no_model), memory, bank, data_dir, known).answer(
        "What is the capital of the country that Ellie Kemper is a citizen of?"
    )
    assert result.text == "Zagreb" and [h.source for h in result.hops] == ["edit", "known"]
    assert result.hops[1].edit_id == fact.id


def test_editor_routes_ripples_through_the_graph_and_leaves_other_questions_alone(
    memory: EditMemory, bank: RelationBank, data_dir: Path
) -> None:
    memory.add_many([parse_edit({**EIFFEL, "target_new": "Rome"}), parse_edit(ROME)])
    backend, sent = recording(" Gustave Eiffel")
    editor = KnowledgeEditor(backend, memory, multihop=walker(backend, memory, bank, data_dir))
    ripple = editor.ask("Which country is the Eiffel Tower in?")
    assert ripple.route == "multihop" and ripple.text == "Italy" and sent == []
    assert len(ripple.edits) == 2 and ripple.hops[0].source == "edit"
    # naming an edited subject, but no edit on the walked path: the model, untouched
    other = editor.ask("Who designed the Eiffel Tower?")
    assert other.route == "passthrough" and other.hops == ()
    assert other.sent == [{"role": "user", "content": "Who designed the Eiffel Tower?"}]
    unrelated = editor.ask("What is the capital of France?")
    assert unrelated.route == "passthrough"


def test_known_facts_of_mquake_cases_never_include_an_edit(data_dir: Path) -> None:
    path = data_dir / "mquake" / "MQuAKE-CF-3k-subset354.json"
    facts = known_facts(path, 20)
    assert facts and all(f.source.startswith("known:") and f.relation_id for f in facts)
    pairs = {(f.subject, f.relation_id, f.target_new) for f in facts}
    assert ("Ellie Kemper", "P27", "Croatia") not in pairs  # case 1's edit
    assert ("Ellie Kemper", "P27", "United States of America") in pairs  # its original fact
    assert ("Croatia", "P35", "Kolinda Grabar-Kitarović") in pairs  # an unedited new hop


@pytest.mark.slow
def test_real_model_answers_the_ripple_and_the_two_hop_question(
    memory: EditMemory, data_dir: Path
) -> None:
    memory.add_many([parse_edit({**EIFFEL, "target_new": "Rome"}), parse_edit(ROME)])
    backend = LlamaCppBackend()
    settings = Settings(data_dir=data_dir)
    editor = KnowledgeEditor(backend, memory, multihop=build_walker(settings, backend, memory))
    ripple = editor.ask("Which country is the Eiffel Tower in?")
    assert ripple.route == "multihop" and ripple.text == "Italy"
    nested = editor.ask("What is the capital of the country where the Eiffel Tower is?")
    assert nested.route == "multihop" and nested.hops[0].answer == "Italy"
    assert nested.hops[-1].source == "model" and "Rome" in nested.text
    question = "What is the capital of France?"
    unrelated = editor.ask(question)
    assert unrelated.route == "passthrough"
    assert unrelated.text == backend.chat([{"role": "user", "content": question}])


def test_the_known_namespace_setting_gives_the_walk_its_trusted_facts(
    tmp_path: Path, embedder: MiniLMEmbedder, data_dir: Path
) -> None:
    settings = Settings(store=tmp_path / "store", data_dir=data_dir, known_namespace="known")
    trusted = EditMemory.open(settings, embedder=embedder, namespace="known")
    fact = trusted.add(
        parse_edit({"subject": "Croatia", "relation": "capital", "target_new": "Zagreb"})
    )
    memory = EditMemory.open(settings, embedder=embedder)
    backend, _ = recording(" model")
    walk = build_walker(settings, backend, memory)
    assert walk.known is not None and [e.id for e in walk.known.facts("croatia")] == [fact.id]
    assert memory.graph.facts("Croatia") == []  # trusted facts are not edits
    hop = walk.hop(walk.bank.relations["P36"], "Croatia")  # "capital" maps to P36
    assert (hop.answer, hop.source, hop.edit_id) == ("Zagreb", "known", fact.id)
    bare = build_walker(settings.model_copy(update={"known_namespace": None}), backend, memory)
    assert bare.known is None


def test_an_edit_on_the_second_hop_is_reached_from_a_hop_the_model_answers(
    memory: EditMemory, bank: RelationBank, data_dir: Path
) -> None:
    memory.add(parse_edit({"subject": "Australia", "relation": "capital", "target_new": "Perth"}))
    backend, sent = recording(" Australia")
    editor = KnowledgeEditor(backend, memory, multihop=walker(backend, memory, bank, data_dir))
    nested = editor.ask("What is the capital of the country where the Sydney Opera House is?")
    assert nested.route == "multihop" and nested.text == "Perth", nested
    assert [h.source for h in nested.hops] == ["model", "edit"]
    assert "Sydney Opera House" in sent[0] and len(sent) == 1  # one model hop, then the edit
    # composed, but no relation of the chain is edited: not walked, no model call
    sent.clear()
    other = editor.ask("Who is the mayor of the city where the Sydney Opera House is?")
    assert other.route == "passthrough"
    assert sent == ["Q: Who is the mayor of the city where the Sydney Opera House is?\nA:"]
    # not worded as a composition and naming no edited subject: never walked
    sent.clear()
    plain = editor.ask("Which city is the Sydney Opera House in?")
    assert plain.route == "passthrough" and len(sent) == 1


def test_an_edited_first_hop_ripples_through_a_hop_the_model_answers(
    memory: EditMemory, bank: RelationBank, data_dir: Path
) -> None:
    big_ben = {"subject": "Big Ben", "relation": "{} is located in the city of"}
    memory.add(parse_edit({**big_ben, "target_new": "Madrid"}))
    backend, sent = recording(" Spain")
    editor = KnowledgeEditor(backend, memory, multihop=walker(backend, memory, bank, data_dir))
    nested = editor.ask("In which country is the city where Big Ben stands?")
    assert nested.route == "multihop" and nested.text == "Spain", nested
    assert [h.source for h in nested.hops] == ["edit", "model"]
    assert nested.hops[1].subject == "Madrid" and "Madrid" in sent[-1]
    direct = editor.ask("Which city is Big Ben in?")  # one relation: the edit itself
    assert direct.route == "ike" and direct.text.startswith("Madrid")


@pytest.mark.slow
def test_real_model_reaches_a_hop_two_edit_and_ripples_through_a_hop_it_knows(
    memory: EditMemory, data_dir: Path
) -> None:
    memory.add(parse_edit({"subject": "Australia", "relation": "capital", "target_new": "Perth"}))
    memory.add(parse_edit({**EIFFEL, "subject": "Big Ben", "target_new": "Madrid"}))
    backend = LlamaCppBackend()
    settings = Settings(data_dir=data_dir)
    editor = KnowledgeEditor(backend, memory, multihop=build_walker(settings, backend, memory))
    hop2 = editor.ask("What is the capital of the country where the Sydney Opera House is?")
    assert hop2.route == "multihop" and hop2.text == "Perth", hop2
    assert [h.source for h in hop2.hops] == ["model", "edit"]
    assert hop2.hops[0].answer == "Australia"  # the model's own first hop
    ripple = editor.ask("In which country is the city where Big Ben stands?")
    assert ripple.route == "multihop" and ripple.text == "Spain", ripple
    assert [h.source for h in ripple.hops] == ["edit", "model"]


def test_a_walk_that_no_edit_can_answer_asks_the_model_nothing(
    memory: EditMemory, bank: RelationBank, data_dir: Path
) -> None:
    memory.add(parse_edit({**EIFFEL, "target_new": "Rome"}))
    backend, sent = recording(" Gustave Eiffel")
    editor = KnowledgeEditor(backend, memory, multihop=walker(backend, memory, bank, data_dir))
    question = "Who is the engineer whose company built the Eiffel Tower?"
    answer = editor.ask(question)
    assert answer.route == "passthrough"
    assert sent == [f"Q: {question}\nA:"]  # no hop asked: no relation of its chain is edited
    walked = editor.multihop.answer(question, fallback=False) if editor.multihop else None
    assert walked is not None and walked.hops  # the walker alone still walks it (diagnostic)


def test_the_shipped_mquake_prompts_are_the_data_folders_files(data_dir: Path) -> None:
    from kme_rag.multihop.hops import MQUAKE_PROMPTS

    shipped = sorted(p.name for p in MQUAKE_PROMPTS.iterdir())
    assert shipped == [
        "MeLLo-prompt.txt",
        "cloze_templates.json",
        "question_templates.json",
        "rel-prompts.json",
    ]
    for name in shipped:
        source = data_dir / "mquake" / "prompts" / name
        assert (MQUAKE_PROMPTS / name).read_bytes() == source.read_bytes(), name


def test_the_walk_users_run_reads_no_data_folder(
    tmp_path: Path, memory: EditMemory, data_dir: Path
) -> None:
    """An installed kme_rag has no ../shared/data: the walk's relations, hop prompts and
    MeLLo fallback come from the package, as complete as with the data folder."""
    empty = tmp_path / "no-data"
    empty.mkdir()
    backend, _ = recording("Paris")
    walk = build_walker(Settings(store=tmp_path / "s", data_dir=empty), backend, memory)
    with_data = RelationBank.from_mquake(data_dir, memory.embedder)
    assert set(walk.bank.relations) == set(with_data.relations) and len(with_data.relations) > 30
    assert walk.prompts.questions == RelationPrompts.load(data_dir).questions
    assert walk.fallback is not None
