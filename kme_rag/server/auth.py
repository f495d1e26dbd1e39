"""Bearer keys: who may ask, who may change edits, and in which namespaces. Pure.

Chat keys (``KME_API_KEYS``) may call the model and read edits; admin keys
(``KME_ADMIN_KEYS``) may also add, delete and undo. Deny by default: a key may use the
namespaces ``KME_KEY_NAMESPACES`` lists for it (``["*"]``: any), and a key it does not
list only the server's default namespace (``KME_NAMESPACE``). With no keys configured
every caller is an admin in every namespace, so the server answers loopback clients only
(see :func:`open_access` and :func:`loopback_client`).
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass

from kme_rag.errors import AuthenticationError, PermissionDeniedError
from kme_rag.settings import Settings

__all__ = [
    "ANY_NAMESPACE",
    "Caller",
    "identify",
    "loopback_client",
    "open_access",
    "require_admin",
    "require_namespace",
]

ANY_NAMESPACE = "*"  # in KME_KEY_NAMESPACES: the key may use every namespace


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: whether it may change edits, and where it may act
    (``namespaces`` None: anywhere, as with no keys configured or a key listed with
    ``["*"]``)."""

    admin: bool
    namespaces: frozenset[str] | None
    key: str | None = None


def open_access(settings: Settings) -> bool:
    """True when no key is configured: every caller is an admin (loopback only)."""
    return not settings.api_keys and not settings.admin_keys


def loopback_client(host: str | None) -> bool:
    """Whether a client address is this machine: 127.0.0.0/8, ``::1``, or IPv4 loopback
    mapped into IPv6 (``::ffff:127.0.0.1``). An unknown client (None) is not."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


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
    allowed = settings.key_namespaces.get(token, (settings.namespace,))
    return Caller(admin, None if ANY_NAMESPACE in allowed else frozenset(allowed), token)


def require_namespace(caller: Caller, namespace: str) -> None:
    if caller.namespaces is not None and namespace not in caller.namespaces:
        raise PermissionDeniedError(f"this API key may not use namespace {namespace!r}")


def require_admin(caller: Caller) -> None:
    if not caller.admin:
        raise PermissionDeniedError("changing edits needs an admin API key")
