"""The OpenAI-compatible server behind the proxy, spoken to over HTTP with httpx.

Remote (``--upstream URL``) or in-process: with no upstream, llama.cpp's own
OpenAI-compatible app (``llama_cpp.server``) runs inside the proxy behind an ASGI
transport, so both cases take the same path and the same bytes. Failures become the
library's errors: unreachable → :class:`BackendError` (502), too slow →
:class:`BackendTimeoutError` (504).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING

import httpx

from kme_rag.errors import BackendError, BackendTimeoutError

if TYPE_CHECKING:
    from kme_rag.settings import Settings

__all__ = ["Upstream", "forward_headers", "response_headers"]

log = logging.getLogger(__name__)

# Never forwarded either way: hop-by-hop headers, and those httpx or the ASGI server
# set for the message they actually send.
_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-encoding",
        "accept-encoding",
        "date",
        "server",
    }
)


def forward_headers(
    incoming: Mapping[str, str], *, api_key: str | None, pass_authorization: bool
) -> dict[str, str]:
    """The headers to send upstream: the client's, less hop-by-hop and ``x-kme-*``
    ones, with the upstream's own key. The client's ``Authorization`` goes on only when
    the proxy checks no keys of its own (it is then the upstream's key)."""
    out = {
        k: v
        for k, v in incoming.items()
        if k.lower() not in _HOP
        and k.lower() != "authorization"
        and not k.lower().startswith("x-kme-")
    }
    if api_key:
        out["authorization"] = f"Bearer {api_key}"
    elif pass_authorization and "authorization" in {k.lower() for k in incoming}:
        out["authorization"] = next(v for k, v in incoming.items() if k.lower() == "authorization")
    return out


def response_headers(upstream: Mapping[str, str]) -> dict[str, str]:
    """The upstream response's headers to pass back to the client."""
    return {k: v for k, v in upstream.items() if k.lower() not in _HOP}


class Upstream:
    """Requests to the upstream, streamed; errors as the library's."""

    def __init__(self, client: httpx.AsyncClient, *, api_key: str | None, where: str) -> None:
        self._client = client
        self.api_key = api_key
        self.where = where

    @classmethod
    def remote(cls, url: str, *, api_key: str | None, timeout_s: float) -> Upstream:
        timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
        client = httpx.AsyncClient(base_url=url.rstrip("/") + "/", timeout=timeout)
        return cls(client, api_key=api_key, where=url)

    @classmethod
    def local(cls, settings: Settings) -> Upstream:
        """llama.cpp's OpenAI-compatible app on the local model, in this process."""
        from kme_rag.server.local import local_llama_app

        transport = httpx.ASGITransport(app=local_llama_app(settings))
        timeout = httpx.Timeout(settings.upstream_timeout_s)
        client = httpx.AsyncClient(
            transport=transport, base_url="http://local-llama/v1/", timeout=timeout
        )
        return cls(client, api_key=None, where="the local llama.cpp model")

    async def open(
        self, method: str, path: str, *, content: bytes | None, headers: Mapping[str, str]
    ) -> httpx.Response:
        """Send a request and return the response with its body not yet read."""
        request = self._client.build_request(method, path, content=content, headers=headers)
        try:
            return await self._client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise BackendTimeoutError(f"the upstream at {self.where} timed out: {exc!r}") from None
        except httpx.HTTPError as exc:
            raise BackendError(f"cannot reach the upstream at {self.where}: {exc!r}") from None

    async def read(self, response: httpx.Response) -> bytes:
        """The whole body of a response :meth:`open` returned."""
        try:
            return await response.aread()
        except httpx.TimeoutException as exc:
            raise BackendTimeoutError(f"the upstream at {self.where} timed out: {exc!r}") from None
        except httpx.HTTPError as exc:
            raise BackendError(f"the upstream at {self.where} failed: {exc!r}") from None
        finally:
            await response.aclose()

    async def chunks(self, response: httpx.Response) -> AsyncGenerator[bytes, None]:
        """The body of a response :meth:`open` returned, as it arrives."""
        try:
            async for chunk in response.aiter_bytes():
                yield chunk
        except httpx.TimeoutException as exc:
            raise BackendTimeoutError(f"the upstream at {self.where} timed out: {exc!r}") from None
        except httpx.HTTPError as exc:
            raise BackendError(f"the upstream at {self.where} failed: {exc!r}") from None
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()
