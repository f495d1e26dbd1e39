"""``python -m kme_rag.server [--host H] [--port P] [--upstream URL]``: the proxy with
settings from the ``KME_*`` environment (the same as ``kme serve``)."""

from __future__ import annotations

import typer

from kme_rag.server.cli import serve
from kme_rag.settings import Settings

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.callback(invoke_without_command=True)
def _main(ctx: typer.Context) -> None:
    ctx.obj = {"settings": Settings()}


app.command("serve")(serve)

if __name__ == "__main__":
    app()
