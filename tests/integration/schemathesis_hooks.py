"""schemathesis hooks for the proxy's run (loaded through ``SCHEMATHESIS_HOOKS``).

The run's upstream is down on purpose, so 502 is the right answer to a valid chat
request; what must never come back is a 500, a store error (503: the store is real and
up, so a 503 is a bug of ours, not the upstream's), or any 5xx that is not an OpenAI
error."""

from __future__ import annotations

from typing import Any

import schemathesis

UPSTREAM_STATUSES = {502, 504}


@schemathesis.check
def no_internal_error(ctx: Any, response: Any, case: Any) -> bool | None:
    status = response.status_code
    if status < 500:
        return None
    if status not in UPSTREAM_STATUSES:
        raise AssertionError(f"{status}: {response.text[:300]}")
    error = response.json().get("error", {})
    if set(error) != {"message", "type", "code"} or "Traceback" in response.text:
        raise AssertionError(f"{status} without an OpenAI error body: {response.text[:300]}")
    return None
