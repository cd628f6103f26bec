"""Named queries from the files under sql/.

A file holds a header comment, then sections that each start with `-- name: <name>` and hold one
statement with DuckDB `$param` bind parameters. Values are always bound, never spliced into text.
"""

from __future__ import annotations

import hashlib

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import duckdb

from skyscript_db.errors import SqlFileError

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$")
_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")


@dataclass(frozen=True)
class Query:
    """One named statement and where it was written."""

    file: str
    name: str
    line: int
    text: str

    @property
    def params(self) -> frozenset[str]:
        return frozenset(_PARAM.findall(_strip_comments(self.text)))

    def run(self, con: duckdb.DuckDBPyConnection, **params: Any) -> duckdb.DuckDBPyConnection:
        """Execute with exactly the declared parameters; errors name the file and line."""
        if set(params) != self.params:
            raise SqlFileError(
                f"{self.where}: query {self.name!r} takes parameters {sorted(self.params)}, "
                f"was given {sorted(params)}"
            )
        try:
            return con.execute(self.text, params or None)
        except duckdb.Error as e:
            raise type(e)(f"{self.where} ({self.name}): {e}") from e

    def row(self, con: duckdb.DuckDBPyConnection, **params: Any) -> dict[str, Any]:
        """Run and return the first row as {column: value}."""
        rows = self.dicts(con, **params)
        return rows[0] if rows else {}

    def dicts(self, con: duckdb.DuckDBPyConnection, **params: Any) -> list[dict[str, Any]]:
        """Run and return every row as {column: value}."""
        cursor = self.run(con, **params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values)) for values in cursor.fetchall()]

    def pages(self, con: duckdb.DuckDBPyConnection, size: int,
              **params: Any) -> Iterator[list[dict[str, Any]]]:
        """Keyset pagination over a query taking `$after` and `$size` and ordered by pair_id:
        each page starts after the last pair_id of the one before, so rows written between
        pages (outcomes, embeddings) never shift what comes next."""
        after = -1
        while page := self.dicts(con, after=after, size=size, **params):
            yield page
            after = page[-1]["pair_id"]

    @property
    def where(self) -> str:
        return f"sql/{self.file}:{self.line}"


def _strip_comments(text: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in text.splitlines())


def sql_text(relative: str) -> str:
    """The text of a file shipped under sql/ (also seeds, e.g. 'seeds/area_rules.csv')."""
    return resources.files("skyscript_db._sql").joinpath(relative).read_text(encoding="utf-8")


def seed_path(name: str) -> str:
    """A filesystem path to a seed file (CSV or Parquet), for DuckDB's readers."""
    return str(resources.files("skyscript_db._sql.seeds").joinpath(name))


def seed_digest(name: str) -> str:
    """A hash of a seed file's bytes: what a stage's fingerprint follows."""
    data = resources.files("skyscript_db._sql.seeds").joinpath(name).read_bytes()
    return hashlib.sha256(data).hexdigest()


def create_macros(con: duckdb.DuckDBPyConnection) -> None:
    """The SQL macros every stage may use (sql/macros.sql), created on `con`."""
    for macro in load("macros.sql").values():
        macro.run(con)


@cache
def load(file: str) -> dict[str, Query]:
    """The named queries of sql/<file>, in file order."""
    return parse(sql_text(file), file)


def parse(text: str, file: str) -> dict[str, Query]:
    """Split SQL text into its named queries; errors give the file and line."""
    queries: dict[str, Query] = {}
    name: str | None = None
    start = 0
    body: list[str] = []

    def close() -> None:
        if name is None:
            return
        statement = "\n".join(body).strip().rstrip(";")
        if not _strip_comments(statement).strip():
            raise SqlFileError(f"sql/{file}:{start}: section {name!r} is empty")
        queries[name] = Query(file, name, start, statement)

    for number, line in enumerate(text.splitlines(), start=1):
        match = _NAME.match(line.strip())
        if match:
            close()
            name, start, body = match.group(1), number, []
            if name in queries:
                raise SqlFileError(f"sql/{file}:{number}: section {name!r} defined twice")
        elif name is not None:
            body.append(line)
    close()
    if not queries:
        raise SqlFileError(f"sql/{file}: no '-- name:' sections found")
    return queries
