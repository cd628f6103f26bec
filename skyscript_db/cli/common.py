"""What every command shares: the console, the --db option, progress bars, the error handler."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import click
import duckdb
import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task,
                           TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from skyscript_db.errors import SkyscriptError

console = Console(stderr=True)

DbOption = Annotated[Path, typer.Option("--db", help="DuckDB database file.")]
DeviceOption = Annotated[str, typer.Option(help="Where models run: auto (a GPU when there is "
                                                "one), cpu, cuda or cuda:N.")]


class ErrorHandlingGroup(TyperGroup):
    """The one error handler: our errors (and DuckDB's, from user SQL) become one line on stderr
    and exit status 1, for every command and subcommand."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (SkyscriptError, duckdb.Error) as e:
            message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True,
                          markup=True)
            raise typer.Exit(1) from e


def say(text: str) -> None:
    """A result line on stderr (stdout is for data: tables, CSV, JSON)."""
    console.print(text, highlight=False, soft_wrap=True)


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.1f}/s" if task.speed else "?/s")


@contextmanager
def progress_bars() -> Iterator:
    """A `(stage, done, total)` callback drawing one bar per stage, with rate and ETA."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _Rate(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        tasks: dict[str, TaskID] = {}

        def update(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=None)
            progress.update(tasks[stage], completed=done, total=total)

        yield update


def print_table(title: str | None, relation: duckdb.DuckDBPyRelation) -> None:
    table = Table(title=title, title_justify="left")
    for column in relation.columns:
        table.add_column(column)
    for row in relation.fetchall():
        table.add_row(*(str(v) for v in row))
    Console().print(table)
