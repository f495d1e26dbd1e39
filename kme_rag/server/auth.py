"""Bearer keys: who may ask, who may change edits, and in which namespaces. Pure.

Chat keys (``KME_API_KEYS``) may call the model and read edits; admin keys
(``KME_ADMIN_KEYS``) may also add, delete and undo. ``KME_KEY_NAMESPACES`` restricts a
key to some namespaces; a key it does not list may use any. With no keys configured the
server is open to every caller and binds to loopback only (see :func:`open_access`).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from kme_rag.errors import AuthenticationError, PermissionDeniedError
from kme_rag.settings import Settings

__all__ = ["Caller", "identify", "open_access", "require_admin", "require_namespace"]


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: whether it may change edits, and where it may act
    (``namespaces`` None: anywhere)."""

    admin: bool
    namespaces: frozenset[str] | None
    key: str | None = None


def open_access(settings: Settings) -> bool:
    """True when no key is configured: every caller is an admin (loopback only)."""
    return not settings.api_keys and not settings.admin_keys


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError(
            "missing API key: send it as 'Authorization: Bearer <key>'"
            if not authorization
            else "malformed Authorization header: expected 'Bearer <key>'"
        )
    return token.strip()


def _matches(token: str, keys: tuple[str, ...]) -> bool:
    found = False
    for key in keys:  # every key compared, in constant time each
        found |= hmac.compare_digest(token.encode(), key.encode())
    return found


def identify(settings: Settings, authorization: str | None) -> Caller:
    """The caller the ``Authorization`` header names (401 when it names none)."""
    if open_access(settings):
        return Caller(admin=True, namespaces=None)
    token = _bearer(authorization)
    admin = _matches(token, settings.admin_keys)
    if not admin and not _matches(token, settings.api_keys):
        raise AuthenticationError("invalid API key")
    allowed = settings.key_namespaces.get(token)
    return Caller(admin, frozenset(allowed) if allowed is not None else None, token)


def require_namespace(caller: Caller, namespace: str) -> None:
    if caller.namespaces is not None and namespace not in caller.namespaces:
        raise PermissionDeniedError(f"this API key may not use namespace {namespace!r}")


def require_admin(caller: Caller) -> None:
    if not caller.admin:
        raise PermissionDeniedError("changing edits needs an admin API key")
