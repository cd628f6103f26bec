"""`skyscript-db serve`: the web page over a database (skyscript_db.web)."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

from skyscript_db.cli.common import DbOption, say
from skyscript_db.db import DEFAULT_DB

LOCAL = ("127.0.0.1", "localhost", "::1")


def serve(
    db: DbOption = DEFAULT_DB,
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 makes the page "
                                           "reachable from other machines.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    workers: Annotated[Optional[int], typer.Option(
        min=1, help="Server processes, each with the model, index and pairs in memory "
                    "[default: 2, or 1 on a one-core machine].")] = None,
) -> None:
    """Look at the dataset in a browser: search, pairs, overview, a read-only SQL console."""
    import uvicorn

    from skyscript_db.web.app import DB_VARIABLE
    from skyscript_db.web.dataset import check_servable

    check_servable(db)  # here, as one clear error, not once per worker process
    if host not in LOCAL:
        say(f"[yellow]warning:[/yellow] listening on {host}: anyone who can reach this machine "
            "can read the whole database")
    say(f"serving {db} at http://{'localhost' if host in LOCAL else host}:{port} "
        "(Ctrl+C stops)")
    os.environ[DB_VARIABLE] = str(db.resolve())
    # One process searches on one core (the GIL); two use a second core and double the memory.
    uvicorn.run("skyscript_db.web.app:from_environment", factory=True, host=host, port=port,
                workers=workers or min(2, os.cpu_count() or 1), log_level="warning")


def register(app: typer.Typer) -> None:
    app.command()(serve)
