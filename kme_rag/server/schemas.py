"""The request and response bodies the proxy documents and checks, as pydantic models.

Requests are checked for the fields the proxy reads, with the OpenAI API's types
(strictly: ``"8"`` is not a number); every other field is allowed and goes upstream
untouched. The ``kme`` field asks for the ``kme`` extension in the response body and is
never sent upstream.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kme_rag.memory.edit import Edit
from kme_rag.memory.store import TextAdded

__all__ = [
    "ChatCompletionRequest",
    "ChatMessage",
    "CompletionRequest",
    "DeletedEdit",
    "EditList",
    "Health",
    "KmeInfo",
    "TextEdits",
    "UndoneChange",
]

_OPEN = ConfigDict(extra="allow", strict=True)
_KME = Field(
    default=False, description="kme_rag extension: also report the edits used in the body."
)
Stop = str | list[str] | None


class ChatMessage(BaseModel):
    model_config = _OPEN

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class _Sampling(BaseModel):
    model_config = _OPEN

    model: str
    stream: bool | None = False
    n: int | None = Field(default=None, ge=1, le=128)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    stop: Stop = None
    kme: bool = _KME


class ChatCompletionRequest(_Sampling):
    """``POST /v1/chat/completions``, as the OpenAI API defines it."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)


class CompletionRequest(_Sampling):
    """``POST /v1/completions``, as the OpenAI API defines it."""

    prompt: str | list[str] | list[int] | list[list[int]]


class KmeInfo(BaseModel):
    """The ``kme`` extension of a response: how it was answered, with which edits."""

    route: str
    namespace: str
    edits: list[dict[str, Any]]


class EditList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Edit]


class TextEdits(BaseModel):
    """What a free-text statement was stored as (see ``POST /v1/edits``)."""

    object: Literal["edit.text"] = "edit.text"
    text: str
    understood: bool
    data: list[Edit]  # the records written: the facts, or the statement itself
    restated: list[Edit]  # stored edits the text only restated (nothing written)
    superseded: list[str]  # ids the facts replaced

    @classmethod
    def of(cls, added: TextAdded) -> TextEdits:
        return cls(
            text=added.text,
            understood=added.understood,
            data=list(added.stored),
            restated=list(added.restated),
            superseded=list(added.superseded),
        )


class DeletedEdit(BaseModel):
    id: str
    object: Literal["edit.deleted"] = "edit.deleted"
    deleted: bool = True


class UndoneChange(BaseModel):
    change_id: str
    kind: Literal["add", "delete"]
    removed: list[str]
    restored: list[str]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
