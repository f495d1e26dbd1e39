from __future__ import annotations

import pytest

from kme_rag import errors


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (errors.ValidationError, 400),
        (errors.PayloadTooLargeError, 413),
        (errors.AuthenticationError, 401),
        (errors.PermissionDeniedError, 403),
        (errors.EditNotFoundError, 404),
        (errors.BackendError, 502),
        (errors.BackendTimeoutError, 504),
        (errors.ContextOverflowError, 400),
    ],
)
def test_every_error_knows_its_status_and_renders_openai_style(
    cls: type[errors.KmeError], status: int
) -> None:
    exc = cls("expected a non-empty subject, got ''")
    assert isinstance(exc, errors.KmeError) and exc.status_code == status
    body = exc.to_openai()["error"]
    assert body["message"] == "expected a non-empty subject, got ''"
    assert body["type"] == cls.error_type


def test_the_hierarchy_is_drawn_in_the_docstring() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        assert name in doc, name
