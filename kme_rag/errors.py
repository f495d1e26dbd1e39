"""The one exception hierarchy of kme_rag.

Every error the library raises on purpose is a :class:`KmeError`. Each class knows the
HTTP status the server answers with and the OpenAI-style error ``type`` it reports, so
the CLI can print one clean line and the server can render ``{"error": {...}}`` bodies
from the same objects::

    KmeError                       500  internal_error
    ├── ValidationError            400  invalid_request_error
    │   └── PayloadTooLargeError   413  invalid_request_error
    ├── AuthenticationError        401  authentication_error
    ├── PermissionDeniedError      403  permission_error
    ├── NotFoundError              404  not_found_error
    │   └── EditNotFoundError      404  not_found_error
    ├── NothingToUndoError         409  conflict_error
    ├── EditConflictError          409  conflict_error
    ├── ConfigurationError         500  configuration_error
    ├── StoreError                 503  store_error
    ├── WhiteboxError              500  whitebox_error
    └── BackendError               502  upstream_error
        ├── BackendTimeoutError    504  upstream_timeout
        └── ContextOverflowError   400  context_length_exceeded
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BackendError",
    "BackendTimeoutError",
    "ConfigurationError",
    "ContextOverflowError",
    "EditConflictError",
    "EditNotFoundError",
    "KmeError",
    "NotFoundError",
    "NothingToUndoError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "StoreError",
    "ValidationError",
    "WhiteboxError",
]


class KmeError(Exception):
    """Base of every error kme_rag raises on purpose."""

    status_code: int = 500
    error_type: str = "internal_error"

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__

    def to_openai(self) -> dict[str, dict[str, str | None]]:
        """The OpenAI-style error body for this error."""
        return {"error": {"message": self.message, "type": self.error_type, "code": None}}


class ValidationError(KmeError):
    """Input rejected at the boundary; the message shows the offending value."""

    status_code = 400
    error_type = "invalid_request_error"


class PayloadTooLargeError(ValidationError):
    status_code = 413


class AuthenticationError(KmeError):
    status_code = 401
    error_type = "authentication_error"


class PermissionDeniedError(KmeError):
    status_code = 403
    error_type = "permission_error"


class NotFoundError(KmeError):
    status_code = 404
    error_type = "not_found_error"


class EditNotFoundError(NotFoundError):
    """No edit with the given id in the namespace."""


class NothingToUndoError(KmeError):
    """Undo was asked for, but the namespace has no change left to undo."""

    status_code = 409
    error_type = "conflict_error"


class EditConflictError(KmeError):
    """An edit id the caller chose is already taken in the namespace (ids never move or
    overwrite: see :class:`~kme_rag.memory.store.EditMemory`)."""

    status_code = 409
    error_type = "conflict_error"


class ConfigurationError(KmeError):
    """Settings that cannot work together, or a resource they name is missing."""

    error_type = "configuration_error"


class StoreError(KmeError):
    """The edit store (Chroma) failed or cannot be reached."""

    status_code = 503
    error_type = "store_error"


class WhiteboxError(KmeError):
    """Weight editing failed: an unsupported architecture, a bad module path, a wrong-order undo."""

    error_type = "whitebox_error"


class BackendError(KmeError):
    """The language-model backend failed or cannot be reached."""

    status_code = 502
    error_type = "upstream_error"


class BackendTimeoutError(BackendError):
    status_code = 504
    error_type = "upstream_timeout"


class ContextOverflowError(BackendError):
    """The prompt does not fit the model's context window."""

    status_code = 400
    error_type = "context_length_exceeded"
