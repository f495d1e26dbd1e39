"""The :class:`Edit` record: one correction of what the model knows.

An edit is either *structured* — (subject, relation, old object → new object), optionally
with a CounterFact-style prompt template such as ``"{} is located in"`` — or *unstructured*:
a free-text statement of new knowledge. Both carry the natural-language ``statement`` that
retrieval embeds; for structured edits it is generated from the fields when not given.

Validation happens here, at the boundary, and every message shows the offending value.
"""

from __future__ import annotations

import functools
import json
import re
import time
import unicodedata
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kme_rag.errors import ValidationError

__all__ = [
    "MAX_FIELD_CHARS",
    "MAX_TEXT_CHARS",
    "Edit",
    "EditStatus",
    "new_change_id",
    "new_edit_id",
    "normalise_name",
    "parse_edit",
    "parse_timestamp",
]

MAX_FIELD_CHARS = 1000
MAX_TEXT_CHARS = 8000  # a passage whose facts were extracted (``derived_from``)
EditStatus = Literal["active", "superseded", "deleted"]

_TEXT_FIELDS = ("subject", "relation", "target_new", "target_true", "prompt", "statement")
_ARTICLE = re.compile(r"^(the|a|an)\s+")
_EDGE_PUNCT = re.compile(r"^[\W_]+|[\W_]+$")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc


def new_edit_id() -> str:
    return "e_" + uuid.uuid4().hex[:16]


def new_change_id() -> str:
    """A change id that sorts by time: nanoseconds since the epoch, then a random suffix."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"


def parse_timestamp(text: str) -> datetime:
    """An ISO 8601 timestamp as stored ("…Z" included, which Python 3.10 cannot read)."""
    return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)


def normalise_name(name: str) -> str:
    """The key an entity or relation is matched by: NFKC, case-folded, no leading article,
    no edge punctuation, single spaces. ``"The  Eiffel Tower."`` → ``"eiffel tower"``."""
    text = unicodedata.normalize("NFKC", name).casefold()
    text = " ".join(text.split())
    text = _EDGE_PUNCT.sub("", text)
    return _ARTICLE.sub("", text)


def _check_text(field: str, value: str) -> str:
    if not value.strip():
        raise ValueError(f"expected a non-empty {field}, got {value!r}")
    if len(value) > MAX_FIELD_CHARS:
        raise ValueError(
            f"{field} is {len(value)} characters, over the limit of {MAX_FIELD_CHARS}: "
            f"{value[:60]!r}..."
        )
    bad = _CONTROL.search(value)
    if bad:
        raise ValueError(f"{field} contains control character {bad.group()!r}: {value!r}")
    return value.strip()


class Edit(BaseModel):
    """One edit of the model's knowledge, as stored in the edit memory."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=new_edit_id, pattern=r"^[A-Za-z0-9_.:-]{1,128}$")
    namespace: str = Field(default="default", pattern=r"^[A-Za-z0-9_.:-]{1,128}$")
    subject: str | None = None
    relation: str | None = None
    relation_id: str | None = None
    target_new: str | None = None
    target_true: str | None = None
    prompt: str | None = None
    statement: str = ""
    subject_aliases: tuple[str, ...] = ()
    target_aliases: tuple[str, ...] = ()
    source: str = "user"
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    status: EditStatus = "active"
    supersedes: str | None = None
    change_id: str = Field(default_factory=new_change_id)
    deleted_change_id: str | None = None
    superseded_change_id: str | None = None  # the change that made it superseded
    origin: str | None = None  # "namespace/id" of the edit this one was copied from
    derived_from: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)  # source text

    @field_validator(*_TEXT_FIELDS, "source", mode="before")
    @classmethod
    def _text(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        if info.field_name == "statement" and value in (None, ""):
            return ""
        if value is None:
            return value
        if not isinstance(value, str):
            raise ValueError(f"expected {info.field_name} to be a string, got {value!r}")
        return _check_text(str(info.field_name), value)

    @field_validator("subject_aliases", "target_aliases", mode="before")
    @classmethod
    def _aliases(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        if value is None:
            return ()
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ValueError(f"expected {info.field_name} to be a list of strings, got {value!r}")
        field = str(info.field_name)
        if bad := [v for v in value if not isinstance(v, str)]:
            raise ValueError(f"expected {field} to hold strings, got {bad[0]!r}")
        unique = dict.fromkeys(_check_text(field, v) for v in value)
        return tuple(unique)

    @field_validator("prompt")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if (
            value.count("{}") != 1
            or value.replace("{}", "").count("{")
            or "}" in value.replace("{}", "")
        ):
            raise ValueError(f"expected a prompt template with exactly one '{{}}', got {value!r}")
        return value

    @model_validator(mode="after")
    def _shape(self) -> Edit:
        triple = (self.subject, self.relation, self.target_new)
        if any(v is not None for v in triple) and not all(v is not None for v in triple):
            raise ValueError(
                "a structured edit needs subject, relation and target_new together, got "
                f"subject={self.subject!r}, relation={self.relation!r}, "
                f"target_new={self.target_new!r}"
            )
        if self.subject is None and not self.statement:
            raise ValueError("expected a triple (subject, relation, target_new) or a statement")
        if self.subject is None and (self.prompt or self.target_true):
            raise ValueError("an unstructured edit (statement only) cannot have prompt/target_true")
        if not self.statement:
            object.__setattr__(self, "statement", self.generated_statement())
        return self

    @property
    def structured(self) -> bool:
        return self.subject is not None

    @property
    def key(self) -> tuple[str, str] | None:
        """(normalised subject, normalised relation): re-editing the same key supersedes."""
        if self.subject is None or self.relation is None:
            return None
        return normalise_name(self.subject), normalise_name(self.relation)

    def template(self) -> str | None:
        """The cloze template of the fact: the prompt, or a relation written as a template."""
        if self.prompt:
            return self.prompt
        if self.relation and "{}" in self.relation:
            return self.relation
        return None

    def cloze(self) -> str:
        """The text the new object should follow: ``"The Eiffel Tower is located in"``."""
        assert self.subject and self.relation, "a statement-only edit has no cloze"
        template = self.template()
        if template:
            return template.format(self.subject)
        return f"The {self.relation} of {self.subject} is"

    def generated_statement(self) -> str:
        """``"The mother tongue of Danielle Darrieux is English."`` from the fields."""
        assert self.subject and self.relation and self.target_new
        return f"{self.cloze()} {self.target_new}."

    def to_metadata(self) -> dict[str, str | int | float | bool | None]:
        """Flat Chroma metadata: every field but the id, tuples as JSON strings.

        Unset fields stay as ``None``, which Chroma reads as "remove this key", so an
        update never leaves a stale value behind.
        """
        data = self.model_dump(mode="json")
        meta: dict[str, str | int | float | bool | None] = {}
        for name, value in data.items():
            if name != "id":
                meta[name] = json.dumps(value) if isinstance(value, list) else value
        meta["created_ts"] = self.created_at.timestamp()
        return meta

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its field values in order and a mask of those set: three times
        faster to load than pydantic's own state (a graph snapshot holds every active
        edit of a namespace)."""
        values = tuple(self.__dict__[name] for name in _FIELD_ORDER)
        given = self.model_fields_set
        mask = sum(1 << i for i, name in enumerate(_FIELD_ORDER) if name in given)
        return (_unpickled, (values, mask))

    @classmethod
    def from_metadata(cls, edit_id: str, meta: dict[str, Any]) -> Edit:
        """Rebuild an edit the store wrote. It was validated on the way in, so this only
        converts types (a 10,000-edit store opens ~1 s faster than with validation)."""
        fields = {k: v for k, v in meta.items() if k in _FIELD_NAMES and v is not None}
        for name in ("subject_aliases", "target_aliases"):
            fields[name] = tuple(json.loads(fields[name])) if name in fields else ()
        fields["created_at"] = parse_timestamp(fields["created_at"])
        return cls.model_construct(**fields, id=edit_id)


_FIELD_NAMES = frozenset(Edit.model_fields)
_FIELD_ORDER = tuple(Edit.model_fields)


@functools.cache
def _given(mask: int) -> frozenset[str]:
    """The names of the fields ``mask`` marks as set (few masks occur)."""
    return frozenset(name for i, name in enumerate(_FIELD_ORDER) if mask >> i & 1)


def _unpickled(values: tuple[Any, ...], mask: int) -> Edit:
    """The edit :meth:`Edit.__reduce__` pickled (its values were validated when made)."""
    edit = object.__new__(Edit)
    object.__setattr__(edit, "__dict__", dict(zip(_FIELD_ORDER, values, strict=True)))
    object.__setattr__(edit, "__pydantic_fields_set__", set(_given(mask)))
    object.__setattr__(edit, "__pydantic_extra__", None)
    object.__setattr__(edit, "__pydantic_private__", None)
    return edit


def parse_edit(data: dict[str, Any]) -> Edit:
    """Validate user input into an :class:`Edit`, raising the library's ``ValidationError``."""
    try:
        return Edit.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "edit"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ValidationError(f"invalid edit ({where}): {message}") from None
