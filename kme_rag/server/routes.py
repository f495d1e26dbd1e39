"""The HTTP surface: OpenAI's completions, chat completions and models, the edit admin
API, and ``/healthz``. Handlers are thin: check the caller, find the tenant, hand over
to :class:`~kme_rag.server.proxy.Proxy` or the tenant's :class:`EditMemory`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal, TypeVar, cast

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from fastapi.security import HTTPBearer

from kme_rag.errors import ValidationError
from kme_rag.memory.edit import Edit
from kme_rag.memory.store import EditMemory
from kme_rag.server.auth import Caller, identify, require_admin, require_namespace
from kme_rag.server.proxy import Proxy
from kme_rag.server.schemas import (
    ChatCompletionRequest,
    CompletionRequest,
    DeletedEdit,
    EditList,
    Health,
    TextEdits,
    UndoneChange,
)
from kme_rag.server.tenants import Tenant

__all__ = ["router"]

T = TypeVar("T")
router = APIRouter()
_bearer = HTTPBearer(auto_error=False, description="A chat key, or an admin key.")
NAME = r"^[A-Za-z0-9_.:-]{1,128}$"


def _proxy(request: Request) -> Proxy:
    return cast(Proxy, request.app.state.proxy)


async def _caller(request: Request, _: Any = Depends(_bearer)) -> Caller:
    return identify(_proxy(request).settings, request.headers.get("authorization"))


Namespace = Annotated[
    str | None,
    Header(
        alias="x-kme-namespace",
        pattern=NAME,
        description="The tenant's namespace of edits (default: the server's KME_NAMESPACE, "
        "'default' unless set). A key may use the namespaces KME_KEY_NAMESPACES lists for "
        'it (["*"]: any); a key it does not list, only the default one (else 403).',
    ),
]


async def _tenant(request: Request, caller: Caller, namespace: str | None) -> Tenant:
    proxy = _proxy(request)
    chosen = namespace or proxy.settings.namespace
    require_namespace(caller, chosen)
    return await proxy.tenants.get(chosen)


async def _asking(
    request: Request, caller: Annotated[Caller, Depends(_caller)], namespace: Namespace = None
) -> Tenant:
    """The tenant of a caller who may ask and read."""
    return await _tenant(request, caller, namespace)


async def _changing(
    request: Request, caller: Annotated[Caller, Depends(_caller)], namespace: Namespace = None
) -> Tenant:
    """The tenant of a caller who may change edits (an admin key)."""
    require_admin(caller)
    return await _tenant(request, caller, namespace)


Asking = Annotated[Tenant, Depends(_asking)]
Changing = Annotated[Tenant, Depends(_changing)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text}
    for code, text in {
        400: "Malformed JSON or wrong types",
        401: "Missing or invalid API key",
        403: "The key may not do this here",
        413: "Body over the size limit",
    }.items()
}
_UPSTREAM: dict[int | str, dict[str, Any]] = {
    502: {"description": "The upstream is unreachable or failed"},
    504: {"description": "The upstream timed out"},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such edit"}}


# ---- OpenAI -----------------------------------------------------------------------------


@router.post("/v1/chat/completions", tags=["openai"], responses={**_ERRORS, **_UPSTREAM})
async def chat_completions(
    request: Request, body: ChatCompletionRequest, tenant: Asking
) -> Response:
    """Chat completion with the namespace's edits applied (OpenAI's API; ``stream``
    gives server-sent events)."""
    return await _proxy(request).chat(request, tenant)


@router.post("/v1/completions", tags=["openai"], responses={**_ERRORS, **_UPSTREAM})
async def completions(request: Request, body: CompletionRequest, tenant: Asking) -> Response:
    """Text completion with the namespace's edits applied (OpenAI's API)."""
    return await _proxy(request).completion(request, tenant)


@router.get("/v1/models", tags=["openai"], responses={**_ERRORS, **_UPSTREAM})
async def models(request: Request, _: Annotated[Caller, Depends(_caller)]) -> Response:
    """The upstream's models."""
    return await _proxy(request).models(request)


# ---- edits ------------------------------------------------------------------------------


def _check_namespace(edits: list[Edit], namespace: str) -> None:
    for edit in edits:
        if "namespace" in edit.model_fields_set and edit.namespace != namespace:
            raise ValidationError(
                f"edit {edit.id!r} names namespace {edit.namespace!r}, but the request is "
                f"for {namespace!r} (set x-kme-namespace)"
            )


_TAKEN: dict[int | str, dict[str, Any]] = {
    409: {"description": "An id the request names is already taken in this namespace"}
}


@router.post("/v1/edits", tags=["edits"], responses={**_ERRORS, **_TAKEN})
async def add_edits(
    body: Edit | list[Edit],
    tenant: Changing,
    extract: Annotated[
        bool, Query(description="Read a single statement's facts (false: store it as is).")
    ] = True,
) -> Edit | EditList | TextEdits:
    """Add one edit (an Edit object) or a batch (a list, stored as one change).

    A single edit with only a ``statement`` (free text: "The Louvre moved to Lyon.") is
    read into its facts, stored as structured edits linked to the text (``derived_from``)
    in one change, and answered with a ``TextEdits`` object: the facts written, the stored
    edits it only restated, what they superseded — or, when nothing was understood, the
    statement stored as it is (``understood: false``). ``extract=false``, an explicit
    ``id`` or a batch store statements as they are.

    Ids are unique per namespace. Leave ``id`` out and the server draws one; an ``id``
    already present in this namespace (any status) is refused with 409 and nothing is
    written — an edit is never overwritten by id. The same id in another namespace is
    another tenant's record and is not touched. ``status``, ``change_id``,
    ``supersedes`` and the other history fields are set by the server."""
    edits = body if isinstance(body, list) else [body]
    if not edits:
        raise ValidationError("expected at least one edit, got an empty list")
    _check_namespace(edits, tenant.namespace)
    if (
        isinstance(body, Edit)
        and extract
        and not body.structured
        and "id" not in body.model_fields_set
    ):
        added = await _in_thread(
            tenant.write, lambda m: m.add_text(body.statement, source=body.source)
        )
        return TextEdits.of(added)
    stored = await _in_thread(tenant.write, lambda m: m.add_many(edits))
    return EditList(data=stored) if isinstance(body, list) else stored[0]


Status = Literal["active", "superseded", "deleted", "all"]


@router.get("/v1/edits", tags=["edits"], responses={**_ERRORS})
async def list_edits(
    tenant: Asking,
    status: Annotated[Status, Query(description="Which edits; all: every status.")] = "active",
    subject: Annotated[str | None, Query(max_length=1000)] = None,
) -> EditList:
    """The namespace's edits, oldest first."""
    wanted = None if status == "all" else status
    found = await _in_thread(tenant.read, lambda m: m.edits(status=wanted, subject=subject))
    return EditList(data=found)


def _jsonl(edits: list[Edit]) -> Iterator[bytes]:
    for edit in edits:  # the format `kme edit export` writes and `kme edit import` reads
        yield (json.dumps(edit.model_dump(mode="json"), ensure_ascii=False) + "\n").encode()


@router.get(
    "/v1/edits/export",
    tags=["edits"],
    response_class=StreamingResponse,
    responses={**_ERRORS, 200: {"content": {"application/x-ndjson": {}}}},
)
async def export_edits(tenant: Asking) -> StreamingResponse:
    """Every edit of the namespace, all statuses, as JSON lines (lossless: import it
    with ``kme edit import FILE``)."""
    edits = await _in_thread(tenant.read, lambda m: m.edits(status=None))
    return StreamingResponse(_jsonl(edits), media_type="application/x-ndjson")


@router.post(
    "/v1/edits/undo", tags=["edits"], responses={**_ERRORS, 409: {"description": "Nothing to undo"}}
)
async def undo(tenant: Changing) -> UndoneChange:
    """Revert the namespace's newest change (an add, a batch or a delete)."""
    done = await _in_thread(tenant.write, lambda m: m.undo())
    return UndoneChange(
        change_id=done.change_id,
        kind=done.kind,
        removed=list(done.removed),
        restored=list(done.restored),
    )


@router.get("/v1/edits/{edit_id}", tags=["edits"], responses={**_ERRORS, **_NOT_FOUND})
async def get_edit(edit_id: str, tenant: Asking) -> Edit:
    """One edit, whatever its status."""
    return await _in_thread(tenant.read, lambda m: m.get(edit_id))


@router.delete("/v1/edits/{edit_id}", tags=["edits"], responses={**_ERRORS, **_NOT_FOUND})
async def delete_edit(edit_id: str, tenant: Changing) -> DeletedEdit:
    """Delete an edit (undo brings it back)."""
    gone = await _in_thread(tenant.write, lambda m: m.delete(edit_id))
    return DeletedEdit(id=gone.id)


@router.get("/healthz", tags=["health"])
async def healthz() -> Health:
    """Liveness: the proxy answers (it does not call the upstream)."""
    return Health()


async def _in_thread(
    call: Callable[[Callable[[EditMemory], T]], T], action: Callable[[EditMemory], T]
) -> T:
    """Run a store action on a worker thread (``tenant.read`` or ``tenant.write``)."""
    return await asyncio.to_thread(call, action)
