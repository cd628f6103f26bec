"""Commands that only read: retrieve, sql, info."""

from __future__ import annotations

import enum
import io
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import pyarrow.csv
import pyarrow.parquet
import typer
from rich.console import Console
from rich.table import Table

from skyscript_db import readonly
from skyscript_db.cli.common import DbOption, DeviceOption, print_table
from skyscript_db.db import DEFAULT_DB, connect, has_table
from skyscript_db.errors import ConfigError, DatabaseError
from skyscript_db.models import Models


class Format(str, enum.Enum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def retrieve(
    text: Annotated[Optional[str], typer.Argument(help="What to look for.")] = None,
    k: Annotated[int, typer.Option("-k", help="How many pairs.")] = 10,
    where: Annotated[Optional[str], typer.Option(help="SQL predicate over the pairs view.")]
    = None,
    image: Annotated[Optional[Path], typer.Option(help="Search by this image instead.")] = None,
    db: DbOption = DEFAULT_DB,
    device: DeviceOption = "auto",
) -> None:
    """The best-matching image-caption pairs for a text (or an image), as a table."""
    from skyscript_db import retrieval

    if (text is None) == (image is None):
        raise ConfigError("give a TEXT or --image PATH")
    models = Models(device)
    frame = retrieval.retrieve(text, k, where, db, models=models) if image is None \
        else retrieval.retrieve_by_image(image, k, where, db, models=models)
    table = Table(show_lines=False)
    for column in ("rank", "score", "pair_id", "collection_code", "title", "image_path"):
        table.add_column(column)
    for row in frame.itertuples():
        table.add_row(str(row.rank), f"{row.score:.4f}", str(row.pair_id), row.collection_code,
                      row.title, row.image_path)
    Console().print(table)


def sql(
    query: Annotated[str, typer.Argument(help="SELECT, WITH, DESCRIBE, SHOW, EXPLAIN or "
                                              "SUMMARIZE.")],
    db: DbOption = DEFAULT_DB,
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    output: Annotated[Optional[Path], typer.Option("--output", "-o",
                                                   help="Write to this file, not stdout.")] = None,
) -> None:
    """Run a read-only query; the database file is never modified."""
    relation = readonly.sql(query, db)
    if format is Format.table:
        _emit(str(relation), output)  # DuckDB's box renderer elides the middle of long results
    elif format is Format.parquet:
        if output is None:
            raise ConfigError("--format parquet needs --output FILE")
        pyarrow.parquet.write_table(relation.to_arrow_table(), output)
    elif format is Format.csv:
        buffer = io.BytesIO()
        pyarrow.csv.write_csv(relation.to_arrow_table(), buffer)
        _emit(buffer.getvalue().decode(), output)
    else:
        names = relation.columns
        lines = (json.dumps(dict(zip(names, row)), default=str) for row in relation.fetchall())
        _emit("".join(line + "\n" for line in lines), output)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)


def info(db: DbOption = DEFAULT_DB) -> None:
    """Show build_info, the stage log, every table's row count and the views."""
    with connect(db, read_only=True) as con:
        if not has_table(con, "build_info"):
            raise DatabaseError(f"{db}: no build_info table; build it with `skyscript-db build`")
        for title, query in (
            ("build_info", "select key, value from build_info order by key"),
            ("stages", "select stage, finished_at, round(seconds, 2) as seconds, rows_in, rows_out "
                       "from stage_runs order by finished_at"),
            ("tables", "select table_name, estimated_size as rows from duckdb_tables() "
                       "where not temporary order by table_name"),
            ("views", "select view_name from duckdb_views() where not internal "
                      "and not temporary order by view_name"),
        ):
            print_table(title, con.sql(query))


def register(app: typer.Typer) -> None:
    app.command()(retrieve)
    app.command("sql")(sql)
    app.command()(info)
