"""The `skyscript-db` command line: it only parses options; the work is in the library and in
the pipeline (skyscript_db.etl.pipeline). Commands are grouped by module: build (the stages),
tags, captions (rewrite), data (export, train, eval), query (retrieve, sql, info), imagery
(registration), serve (the web page)."""

from __future__ import annotations

import gc
import logging
from typing import Annotated

import typer
from rich.logging import RichHandler

from skyscript_db.cli import build, captions, data, imagery, query, serve, tags
from skyscript_db.cli.common import ErrorHandlingGroup, console

app = typer.Typer(help="Build SkyScript-style image-text datasets from OpenStreetMap in one "
                       "DuckDB database.", cls=ErrorHandlingGroup, no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug detail.")]
         = False,
         quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Log warnings only.")] = False
         ) -> None:
    """Build SkyScript-style image-text datasets from OpenStreetMap in one DuckDB database."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]",
                        handlers=[RichHandler(console=console, show_path=False)])


build.register(app)
app.add_typer(tags.app, name="tags")
captions.register(app)
data.register(app)
query.register(app)
imagery.register(app)
serve.register(app)


def run() -> None:
    """The console script: the app, then an exit that skips the collector's last passes. Torch
    and transformers leave some 500 K objects; collecting them at interpreter exit costs 1.3 s
    on 2 cores after every command that loaded a model. Connections and files are closed by
    then: the commands close them as they finish."""
    try:
        app(prog_name="skyscript-db")
    finally:
        gc.freeze()
