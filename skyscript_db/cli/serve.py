"""`skyscript-db serve`: the web page over a database (skyscript_db.web)."""

from __future__ import annotations

from typing import Annotated

import typer

from skyscript_db.cli.common import DbOption, say
from skyscript_db.db import DEFAULT_DB

LOCAL = ("127.0.0.1", "localhost", "::1")


def serve(
    db: DbOption = DEFAULT_DB,
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 makes the page "
                                           "reachable from other machines.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
) -> None:
    """Look at the dataset in a browser: search, pairs, overview, a read-only SQL console."""
    import uvicorn

    from skyscript_db.web.app import create_app
    from skyscript_db.web.dataset import Dataset

    app = create_app(Dataset(db))
    if host not in LOCAL:
        say(f"[yellow]warning:[/yellow] listening on {host}: anyone who can reach this machine "
            "can read the whole database")
    say(f"serving {db} at http://{'localhost' if host in LOCAL else host}:{port} "
        "(Ctrl+C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    app.command()(serve)
