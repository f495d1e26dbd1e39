from __future__ import annotations

import pytest
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

from kme_rag.errors import WhiteboxError
from kme_rag.memory.edit import Edit
from kme_rag.whitebox.edit_requests import (
    CONTEXT_PREFIXES,
    cloze_prompt,
    edit_request,
    locate_subject,
    probability_metrics,
    score_targets,
    target_token_ids,
)
from kme_rag.whitebox.prompts import TokenizedPrompt
from tests.edits import city_edit
from tests.whitebox.tiny import target_logprob
from tests.whitebox.words import BOS, word_tokenizer

TEXTS = (
    "The Eiffel Tower is located in the city of Rome Paris New York",
    "The capital of Tower is a",
    *CONTEXT_PREFIXES,
)
EIFFEL = city_edit(prompt="The {} is located in the city of", target_new="New York")


@pytest.fixture
def tokenizer() -> PreTrainedTokenizerFast:
    return word_tokenizer(TEXTS)


def _words(tokenizer: PreTrainedTokenizerFast, ids: tuple[int, ...]) -> list[str]:
    return list(tokenizer.convert_ids_to_tokens(list(ids)))


def test_cloze_prompt_uses_the_template_or_the_relation() -> None:
    assert cloze_prompt(EIFFEL) == "The Eiffel Tower is located in the city of"
    bare = Edit(subject="Japan", relation="capital", target_new="Kyoto")
    assert cloze_prompt(bare) == "The capital of Japan is"
    with pytest.raises(WhiteboxError, match="structured edit"):
        cloze_prompt(Edit(statement="Japan moved its capital to Kyoto."))


def test_locate_subject_finds_its_tokens_behind_bos(tokenizer: PreTrainedTokenizerFast) -> None:
    span = locate_subject(tokenizer, "The Eiffel Tower is located in the city of", "Eiffel Tower")
    assert span.input_ids[0] == BOS
    assert _words(tokenizer, span.input_ids[span.first : span.last + 1]) == ["Eiffel", "Tower"]
    assert (span.first, span.last) == (2, 3)


def test_locate_subject_starts_searching_at_start(tokenizer: PreTrainedTokenizerFast) -> None:
    text = "Tower is a fact. The Tower is"
    assert locate_subject(tokenizer, text, "Tower").last == 1
    later = locate_subject(tokenizer, text, "Tower", start=text.index("The"))
    assert later.last == 7 and _words(tokenizer, later.input_ids)[later.last] == "Tower"
    with pytest.raises(WhiteboxError, match="expected the subject 'Eiffel'"):
        locate_subject(tokenizer, text, "Eiffel")


def test_edit_request_marks_the_subject_behind_every_prefix(
    tokenizer: PreTrainedTokenizerFast,
) -> None:
    request = edit_request(tokenizer, EIFFEL)
    assert len(request.prompts) == len(CONTEXT_PREFIXES)
    for prefix, prompt in zip(CONTEXT_PREFIXES, request.prompts, strict=True):
        words = _words(tokenizer, prompt.input_ids)
        assert words[0] == "<bos>" and words[prompt.subject_last - 1 :][:2] == ["Eiffel", "Tower"]
        assert words[-2:] == ["city", "of"]
        assert len(prompt.input_ids) == 1 + len(
            tokenizer.tokenize(f"{prefix} {cloze_prompt(EIFFEL)}")
        )
    assert _words(tokenizer, request.target_ids) == ["New", "York"]  # no BOS
    (essence,) = request.essence
    assert _words(tokenizer, essence.input_ids) == ["<bos>", "Eiffel", "Tower", "is", "a"]
    assert essence.subject_last == 2


def test_target_ids_have_no_bos_and_reject_empty(tokenizer: PreTrainedTokenizerFast) -> None:
    assert target_token_ids(tokenizer, "Rome") == (tokenizer.convert_tokens_to_ids("Rome"),)
    with pytest.raises(WhiteboxError, match="non-empty target"):
        target_token_ids(tokenizer, "  ")


def test_score_targets_matches_a_forward_pass_by_hand(llama: LlamaForCausalLM) -> None:
    prompt = TokenizedPrompt((1, 9, 10, 11), 2)
    targets = [(20, 21, 22), (30,)]
    scores = score_targets(llama, prompt.input_ids, targets)
    for score, target in zip(scores, targets, strict=True):
        assert score.tokens == len(target)
        assert score.logprob == pytest.approx(target_logprob(llama, prompt, target), abs=1e-4)
    assert scores[0].mean == pytest.approx(scores[0].logprob / 3)


def test_probability_metrics_compare_mean_log_probabilities(
    llama: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast
) -> None:
    prompt = "The Eiffel Tower is located in the city of"
    metrics = probability_metrics(llama, tokenizer, prompt, "New York", "Paris")
    assert (metrics.new.tokens, metrics.true.tokens) == (2, 1)
    ids = tuple(tokenizer(prompt)["input_ids"])
    by_hand = target_logprob(llama, TokenizedPrompt(ids, 0), target_token_ids(tokenizer, "Paris"))
    assert metrics.true.logprob == pytest.approx(by_hand, abs=1e-4)
    assert metrics.success == (metrics.new.logprob / 2 > metrics.true.logprob)
