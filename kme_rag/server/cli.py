"""``kme [--store DIR] serve [--host H] [--port P] [--upstream URL]``: run the proxy."""

from __future__ import annotations

import ipaddress
import logging

import typer

from kme_rag.server.auth import open_access
from kme_rag.settings import Settings

__all__ = ["is_loopback", "run", "serve"]

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_host(settings: Settings, host: str) -> tuple[str, str | None]:
    """The host to bind and, when it differs from the one asked for, why: with no keys
    configured the proxy is open to every caller, so it listens on loopback only."""
    if open_access(settings) and not is_loopback(host):
        return "127.0.0.1", (
            f"no API keys configured (KME_API_KEYS / KME_ADMIN_KEYS): listening on "
            f"127.0.0.1 only, not {host}"
        )
    return host, None


def run(settings: Settings, host: str, port: int) -> None:
    """Serve the proxy until interrupted."""
    from kme_rag.extras import require

    require("fastapi", "kme serve")
    uvicorn = require("uvicorn", "kme serve")
    from kme_rag.server.app import create_app

    host, why = bind_host(settings, host)
    if why:
        typer.echo(f"warning: {why}", err=True)
    elif open_access(settings):
        typer.echo("no API keys configured: open to every local caller (loopback only)", err=True)
    where = settings.upstream_url or "the local llama.cpp model (in-process)"
    typer.echo(f"kme proxy on http://{host}:{port}/v1, upstream: {where}", err=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
    upstream: str | None = typer.Option(
        None,
        help="OpenAI-compatible upstream base URL, http://host:port/v1 (env KME_UPSTREAM_URL); "
        "default: the local llama.cpp model in-process. Its key: KME_UPSTREAM_API_KEY.",
    ),
) -> None:
    """Serve the OpenAI-compatible editing proxy: point any OpenAI client's base_url at it."""
    settings: Settings = ctx.obj["settings"]
    if upstream is not None:
        settings = settings.model_copy(update={"upstream_url": upstream})
    run(settings, host, port)
