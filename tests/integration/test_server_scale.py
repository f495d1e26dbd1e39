"""Scale-out: two proxy processes share one real Chroma server (``chroma run`` on
loopback). An edit added through one is used by the other within a second, and deleting
it through the other takes effect in the first within a second (no stale fact graph).

"Within a second" is checked as a user sees it: a request sent one second after the
write (however long the request itself then takes on a busy machine) sees the change."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from .proxy_helpers import proxy_processes
from .test_server import ADMIN, EIFFEL, bearer

pytestmark = pytest.mark.slow

FRESH_WITHIN_S = 1.0
CLOZE = {
    "model": "gemma",
    "prompt": "The Eiffel Tower is located in the city of",
    "max_tokens": 1,
    "temperature": 0,
}


def edits_used(proxy: str) -> str:
    response = httpx.post(f"{proxy}/completions", json=CLOZE, headers=bearer(ADMIN), timeout=60)
    assert response.status_code == 200, response.text
    return response.headers["x-kme-edits"]


def test_two_proxies_on_one_chroma_server_see_each_others_edits_within_a_second(
    chroma_url: str, llama_server: str, tmp_path: Path
) -> None:
    env = {
        "KME_CHROMA_URL": chroma_url,
        "KME_COLLECTION": f"scale_{uuid.uuid4().hex[:10]}",
        "KME_STORE": str(tmp_path / "unused"),
        "KME_UPSTREAM_FRAMING": "qa",
        "KME_ADMIN_KEYS": ADMIN,
    }
    with proxy_processes(2, env, tmp_path, llama_server) as (first, second):
        assert edits_used(first) == "" and edits_used(second) == ""
        added = httpx.post(f"{first}/edits", json=EIFFEL, headers=bearer(ADMIN))
        edit_id = added.json()["id"]
        time.sleep(FRESH_WITHIN_S)  # a request sent a second after the write sees it
        assert edits_used(second) == edit_id
        answer = httpx.post(
            f"{second}/completions",
            json={**CLOZE, "max_tokens": 4},
            headers=bearer(ADMIN),
            timeout=60,
        )
        assert answer.json()["choices"][0]["text"].startswith(" Rome")

        deleted = httpx.delete(f"{second}/edits/{edit_id}", headers=bearer(ADMIN))
        assert deleted.status_code == 200
        assert edits_used(second) == ""  # at once where it was deleted
        time.sleep(FRESH_WITHIN_S)
        assert edits_used(first) == ""
