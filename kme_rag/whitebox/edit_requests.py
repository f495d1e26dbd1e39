"""From a structured :class:`~kme_rag.memory.edit.Edit` to the core's token-level request.

The white-box core works on token ids; this adapter owns the text side:

- the edit's cloze prompt — its template filled with the subject, or
  ``"The {relation} of {subject} is"`` when it has none (:func:`cloze_prompt`);
- ROME's context prefixes: the prompt alone and behind each of :data:`CONTEXT_PREFIXES`,
  so the key and value do not depend on one exact wording before the subject;
- the subject's last token, found from the tokenizer's character offsets
  (:func:`locate_subject`), so merges across the subject's edges cannot shift it;
- the target tokens, ``" " + target_new`` without BOS (:func:`target_token_ids`);
- the essence prompt ``"{subject} is a"`` for ROME's KL term.

Also here: ROME's probability metrics (:func:`probability_metrics`), which score a prompt's
continuations by their mean per-token log-probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from kme_rag.errors import WhiteboxError
from kme_rag.memory.edit import Edit
from kme_rag.whitebox.prompts import (
    EditRequest,
    TokenizedPrompt,
    eval_mode,
    model_device,
    pad_batch,
)
from kme_rag.whitebox.target import logits_at

__all__ = [
    "CONTEXT_PREFIXES",
    "ESSENCE_TEMPLATE",
    "ProbabilityMetrics",
    "SubjectSpan",
    "TargetScore",
    "cloze_prompt",
    "edit_request",
    "locate_subject",
    "probability_metrics",
    "score_targets",
    "target_token_ids",
]

# ROME samples ten short continuations of <|endoftext|> from the model as prefixes; a fixed
# list of short, neutral sentences does the same job and makes every request reproducible.
# The empty prefix stands for the prompt alone.
CONTEXT_PREFIXES: tuple[str, ...] = (
    "",
    "Here is a fact.",
    "I read this today.",
    "This is well known.",
    "Let me tell you something.",
    "Consider the following.",
    "Someone asked me about it.",
    "Here is what I learned.",
    "It is worth knowing.",
    "The answer is simple.",
    "Note this down.",
)
ESSENCE_TEMPLATE = "{} is a"


@dataclass(frozen=True)
class SubjectSpan:
    """A tokenised text and the inclusive token range ``[first, last]`` of its subject."""

    input_ids: tuple[int, ...]
    first: int
    last: int

    def prompt(self) -> TokenizedPrompt:
        return TokenizedPrompt(self.input_ids, self.last)


def cloze_prompt(edit: Edit) -> str:
    """The text the new object should follow: the template with the subject filled in."""
    if edit.subject is None or edit.relation is None or edit.target_new is None:
        raise WhiteboxError(
            f"expected a structured edit (subject, relation, target_new), got edit {edit.id} "
            f"with statement {edit.statement!r}"
        )
    return edit.cloze()


def locate_subject(
    tokenizer: PreTrainedTokenizerBase, text: str, subject: str, *, start: int = 0
) -> SubjectSpan:
    """Tokenise ``text`` (with the tokenizer's BOS) and find ``subject`` in it.

    The subject is the first occurrence at or after character ``start``; its tokens are
    those whose character spans overlap it. Needs a fast tokenizer (character offsets).
    """
    begin = text.find(subject, start)
    if not subject or begin < 0:
        raise WhiteboxError(f"expected the subject {subject!r} in the prompt {text!r}")
    end = begin + len(subject)
    if not tokenizer.is_fast:
        raise WhiteboxError(f"expected a fast tokenizer, got {type(tokenizer).__name__}")
    encoding = tokenizer(text, return_offsets_mapping=True)
    ids: list[int] = encoding["input_ids"]
    offsets: list[tuple[int, int]] = encoding["offset_mapping"]
    inside = [i for i, (s, e) in enumerate(offsets) if s < end and e > begin and e > s]
    if not inside:
        raise WhiteboxError(f"no token of {text!r} covers the subject {subject!r}")
    return SubjectSpan(tuple(ids), inside[0], inside[-1])


def target_token_ids(tokenizer: PreTrainedTokenizerBase, target: str) -> tuple[int, ...]:
    """The tokens of ``" " + target`` as they follow a prompt: no BOS, leading space kept."""
    if not target.strip():
        raise WhiteboxError(f"expected a non-empty target, got {target!r}")
    ids: list[int] = tokenizer(" " + target.strip(), add_special_tokens=False)["input_ids"]
    return tuple(ids)


def _prefixed(prefix: str, prompt: str) -> tuple[str, int]:
    """``prefix + " " + prompt`` and where the prompt starts in it."""
    if not prefix:
        return prompt, 0
    return f"{prefix} {prompt}", len(prefix) + 1


def edit_request(
    tokenizer: PreTrainedTokenizerBase,
    edit: Edit,
    prefixes: Sequence[str] = CONTEXT_PREFIXES,
) -> EditRequest:
    """The edit's cloze prompt behind each prefix → ``target_new``; essence "{subject} is a"."""
    prompt = cloze_prompt(edit)
    assert edit.subject is not None and edit.target_new is not None  # checked by cloze_prompt
    prompts = []
    for prefix in prefixes:
        text, start = _prefixed(prefix, prompt)
        prompts.append(locate_subject(tokenizer, text, edit.subject, start=start).prompt())
    essence = locate_subject(tokenizer, ESSENCE_TEMPLATE.format(edit.subject), edit.subject)
    return EditRequest(
        prompts=tuple(prompts),
        target_ids=target_token_ids(tokenizer, edit.target_new),
        essence=(essence.prompt(),),
    )


@dataclass(frozen=True)
class TargetScore:
    """log p(target | prompt), summed over the target's tokens, and their number."""

    logprob: float
    tokens: int

    @property
    def mean(self) -> float:
        """Mean per-token log-probability: what ROME's evaluation compares."""
        return self.logprob / self.tokens


@dataclass(frozen=True)
class ProbabilityMetrics:
    """ROME's probability test on one prompt: does the new object beat the true one?"""

    new: TargetScore
    true: TargetScore

    @property
    def success(self) -> bool:
        """P(new) > P(true) by mean per-token log-probability (ROME's efficacy criterion)."""
        return self.new.mean > self.true.mean


@torch.no_grad()
def score_targets(
    model: nn.Module, prompt_ids: Sequence[int], targets: Sequence[Sequence[int]]
) -> list[TargetScore]:
    """log p(each target | prompt) in one right-padded batch; the model is unchanged."""
    if not prompt_ids or not targets or not all(targets):
        raise WhiteboxError("expected a non-empty prompt and non-empty targets")
    device = model_device(model)
    ids, mask = pad_batch([[*prompt_ids, *target[:-1]] for target in targets], device)
    start = len(prompt_ids) - 1  # the logits that predict each target's first token
    rows = torch.tensor([row for row, t in enumerate(targets) for _ in t], device=device)
    positions = torch.tensor([start + i for t in targets for i in range(len(t))], device=device)
    with eval_mode(model):
        logits = logits_at(model, ids, mask, rows, positions)  # (sum of T, V): read places only
    picked = (
        logits.float()
        .log_softmax(-1)
        .gather(-1, torch.tensor([token for t in targets for token in t], device=device)[:, None])[
            :, 0
        ]
    )
    scores, offset = [], 0
    for target in targets:
        scores.append(TargetScore(float(picked[offset : offset + len(target)].sum()), len(target)))
        offset += len(target)
    return scores


def probability_metrics(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompt: str,
    target_new: str,
    target_true: str,
) -> ProbabilityMetrics:
    """P(new) and P(true) after ``prompt`` (tokenised with BOS); ``success`` is efficacy."""
    prompt_ids: list[int] = tokenizer(prompt)["input_ids"]
    new, true = score_targets(
        model,
        prompt_ids,
        [target_token_ids(tokenizer, target_new), target_token_ids(tokenizer, target_true)],
    )
    return ProbabilityMetrics(new=new, true=true)
