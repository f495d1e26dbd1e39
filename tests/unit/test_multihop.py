"""MeLLo's loop and parsing, and MQuAKE scoring: pure, with a scripted model."""

from __future__ import annotations

from pathlib import Path

from kme_rag.backends import CallableBackend
from kme_rag.bench.mquake_metrics import MquakeCase, answered, by_hops, prior_baseline
from kme_rag.memory.edit import parse_edit
from kme_rag.multihop.mello import MelloParams, parse_round, run_mello

PROMPT = "Question: example?\nFinal answer: example"


def scripted(*replies: str) -> tuple[CallableBackend, list[str]]:
    """A model that gives ``replies`` in turn, and the prompts it was sent."""
    sent: list[str] = []
    queue = list(replies)

    def complete(prompt: str) -> str:
        sent.append(prompt)
        return queue.pop(0)

    return CallableBackend(complete), sent


def test_a_round_yields_the_subquestion_before_the_generated_answer() -> None:
    step = parse_round("Subquestion: Who is X's spouse?\nGenerated answer: Y is.\n")
    assert step.subquestion == "Who is X's spouse?" and step.final is None
    assert parse_round("...\nFinal answer: Ottawa").final == "Ottawa"


def test_strict_parsing_wants_the_final_answer_on_the_last_line() -> None:
    text = "Final answer: Ottawa\n\nQuestion: Who is"
    assert parse_round(text).final is None
    assert parse_round(text, loose=True).final == "Ottawa"


def test_mello_feeds_the_retrieved_fact_back_and_reads_the_final_answer() -> None:
    backend, sent = scripted(
        "Subquestion: What is the country of citizenship of Ellie Kemper?\n"
        "Generated answer: Ellie Kemper is a citizen of United States.\n",
        " Retrieved fact contradicts to generated answer, so the intermediate answer is: "
        "Croatia\nSubquestion: Who is the head of state of Croatia?\n"
        "Generated answer: The head of state of Croatia is Zoran Milanović.\n",
        " Retrieved fact does not contradict to generated answer, so the intermediate "
        "answer is: Zoran Milanović\nFinal answer: Zoran Milanović",
    )
    subquestion = "What is the country of citizenship of Ellie Kemper?"
    facts = {subquestion: "Ellie Kemper is a citizen of Croatia."}
    result = run_mello("Who heads Ellie Kemper's country?", backend, facts.get, PROMPT)
    assert result.answer == "Zoran Milanović"
    assert [r.subquestion for r in result.rounds[:2]] == [
        "What is the country of citizenship of Ellie Kemper?",
        "Who is the head of state of Croatia?",
    ]
    assert sent[1].endswith("Retrieved fact: Ellie Kemper is a citizen of Croatia.")
    assert sent[0].endswith("Question: Who heads Ellie Kemper's country?\n")
    assert result.checks == (1, 1)


def test_mello_gives_up_after_the_round_limit_or_a_malformed_round() -> None:
    step = "Subquestion: Q?\nGenerated answer: A.\n"
    backend, sent = scripted(*[step] * 4)
    result = run_mello("q", backend, lambda _: None, PROMPT, MelloParams(max_rounds=4))
    assert result.answer is None and len(sent) == 4
    backend, _ = scripted("I do not know.")
    assert run_mello("q", backend, lambda _: None, PROMPT).answer is None


def case(case_id: str, relation: str, new: str, original: str, hops: int = 2) -> MquakeCase:
    edit = parse_edit({"subject": "S", "relation": "r", "target_new": new})
    return MquakeCase(case_id, (edit,), ("q1", "q2", "q3"), (new,), (original,), hops, relation)


def test_answers_match_aliases_as_whole_words() -> None:
    assert answered("It is the Republic of Croatia.", ("Croatia", "HR"))
    assert not answered("Croatian", ("Croatia",)) and not answered(None, ("Croatia",))


def test_prior_baseline_guesses_the_most_common_answer_of_the_relation_leave_one_out() -> None:
    cases = [
        case("1", "P35", "Biden", "Trump"),
        case("2", "P35", "Biden", "Trump"),
        case("3", "P35", "Biden", "Trump"),
        case("4", "P35", "Macron", "Trump"),
        case("5", "P36", "Paris", "Rome"),
    ]
    # 1-3 are guessed right from each other; 4 is guessed "Biden"; 5 has no other case.
    assert prior_baseline(cases, "new") == 0.6
    assert prior_baseline(cases, "original") == 0.8
    assert by_hops(cases, [True, False, True, True, False]) == {"2-hop": 0.6}


def test_known_hops_probes_only_the_unedited_hops() -> None:
    from kme_rag.bench.mquake_metrics import Hop, known_hops, summarise_mquake

    hops = (
        Hop("Who is A married to?", "P26", ("B",), edited=False),
        Hop("What language does B speak?", "P1412", ("Greek",), edited=True),
    )
    base = case("1", "P1412", "Greek", "English")
    cases = [MquakeCase(**{**base.__dict__, "new_hops": hops}), case("2", "P1412", "Greek", "x")]
    asked: list[str] = []

    def ask(hop: Hop) -> str:
        asked.append(hop.question)
        return "B, of course"

    known = known_hops(cases, ask)
    assert asked == ["Who is A married to?"] and known == [[True], []]
    rows = [
        {"new_right": [True, False, False], "original_right": [False] * 3, "questions": []},
        {"new_right": [False] * 3, "original_right": [True] * 3, "questions": []},
    ]
    for row in rows:
        row["questions"] = [{"ms": 10.0}] * 3
    metrics = summarise_mquake(cases, rows, known)["metrics"]
    assert metrics["known_hops_accuracy"] == 0.5 and metrics["known_hops_cases"] == 2
    assert metrics["unedited_hop_accuracy"] == 1.0 and metrics["multihop_accuracy"] == 0.5


def test_accuracy_by_edited_hop_splits_first_hop_edits_from_later_ones() -> None:
    from kme_rag.bench.mquake_metrics import Hop, by_edited_hop

    def with_hops(case_id: str, *edited: bool) -> MquakeCase:
        hops = tuple(Hop(f"q{i}", "P1", ("a",), edited=e) for i, e in enumerate(edited))
        return MquakeCase(**{**case(case_id, "P1", "a", "b").__dict__, "new_hops": hops})

    cases = [
        with_hops("1", True, False),
        with_hops("2", True, True),
        with_hops("3", False, True),
        with_hops("4", False, False, True),
        with_hops("5", False, False),  # no edited hop: in neither group
        case("6", "P1", "a", "b"),  # no hops recorded
    ]
    got = by_edited_hop(cases, [True, False, True, False, True, True])
    assert got == {
        "first": {"accuracy": 0.5, "cases": 2},
        "later_only": {"accuracy": 0.5, "cases": 2},
    }


def test_hop_prompts_use_the_relation_examples(data_dir: Path) -> None:
    from kme_rag.multihop.hops import RelationPrompts, ask_hop

    prompts = RelationPrompts.load(data_dir)
    question = prompts.question("P36", "France")
    assert question == "What is the capital of France?"
    text = prompts.prompt("P36", question)
    assert text.count("\n") == 4 and text.endswith("Q: What is the capital of France? A:")
    backend, sent = scripted(" Paris\nQ: next")
    assert ask_hop(backend, prompts, "P36", question) == "Paris" and sent == [text]
