"""Ad hoc SQL that can only read: checked with sqlglot before it reaches DuckDB, then run on a
read-only connection, so the database file is never modified. `pairs_query` is the one way a
user's `where` predicate (retrieve, export) becomes SQL: parsed as an expression, checked, and
put into a statement as a syntax tree, never pasted into text."""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import sqlglot
from sqlglot import exp

from skyscript_db.db import DEFAULT_DB, connect
from skyscript_db.errors import ReadOnlyViolation

# Statement kinds a reader may run. sqlglot parses EXPLAIN as a Command, whose inner statement is
# checked in turn (EXPLAIN ANALYZE runs it).
_READ_KINDS = (exp.Query, exp.Describe, exp.Show, exp.Summarize)
_WRITE_NODES = (exp.DML, exp.Create, exp.Drop, exp.Alter, exp.Copy)
_ALLOWED = "SELECT, WITH, DESCRIBE, SHOW, EXPLAIN, SUMMARIZE"


def check_read_only(query: str) -> None:
    """Raise ReadOnlyViolation unless every statement in `query` only reads."""
    sqlglot_log = logging.getLogger("sqlglot")
    level = sqlglot_log.level
    sqlglot_log.setLevel(logging.ERROR)  # it warns when it falls back to Command for EXPLAIN
    try:
        statements = [s for s in sqlglot.parse(query, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as e:
        raise ReadOnlyViolation(f"could not parse the query: {str(e).splitlines()[0]}") from e
    finally:
        sqlglot_log.setLevel(level)
    if not statements:
        raise ReadOnlyViolation("empty query")
    for statement in statements:
        _check_statement(statement)


def _check_statement(statement: exp.Expression) -> None:
    if isinstance(statement, exp.Command) and statement.name.upper() == "EXPLAIN":
        inner = statement.expression.name.strip()
        if inner.upper().startswith("ANALYZE"):
            inner = inner[len("ANALYZE"):]
        check_read_only(inner)
        return
    if not isinstance(statement, _READ_KINDS):
        kind = statement.sql(dialect="duckdb").split(maxsplit=1)[0]
        raise ReadOnlyViolation(
            f"only read statements are allowed ({_ALLOWED}), not {kind.upper()}")
    for node in statement.walk():
        if isinstance(node, _WRITE_NODES):
            raise ReadOnlyViolation(
                f"only read statements are allowed ({_ALLOWED}), found {node.key.upper()} inside"
            )


def pairs_query(where: str | None, columns: tuple[str, ...] = ("pair_id",)) -> str:
    """`SELECT <columns> FROM pairs [WHERE <where>]`, with `where` a read-only predicate.

    >>> pairs_query("collection_code = 'FI' and similarity_rank_pct < 20")
    "SELECT pair_id FROM pairs WHERE collection_code = 'FI' AND similarity_rank_pct < 20"
    """
    return select_where("pairs", where, columns)


def select_where(source: str, where: str | None, columns: tuple[str, ...]) -> str:
    """`SELECT <columns> FROM <source> [WHERE <where>]`, with `where` a read-only predicate."""
    query = exp.select(*columns).from_(source)
    if where is not None:
        query = query.where(_predicate(where, source))
    text = query.sql(dialect="duckdb")
    check_read_only(text)  # subqueries inside the predicate are checked like any query
    return text


def _predicate(where: str, source: str) -> exp.Expression:
    try:
        return sqlglot.parse_one(where, read="duckdb", into=exp.Condition)
    except sqlglot.errors.ParseError as e:
        raise ReadOnlyViolation(f"--where {where!r}: not one SQL predicate over {source} "
                                f"({str(e).splitlines()[0]})") from e


def sql(query: str, db: str | Path | None = None) -> duckdb.DuckDBPyRelation:
    """Run a read-only query on the database (default data/skyscript.duckdb); returns a relation.

    >>> sql("DROP TABLE osm_objects")
    Traceback (most recent call last):
    ...
    skyscript_db.errors.ReadOnlyViolation: only read statements are allowed (SELECT, WITH, DESCRIBE, SHOW, EXPLAIN, SUMMARIZE), not DROP
    """
    check_read_only(query)
    con = connect(db or DEFAULT_DB, read_only=True)
    return con.sql(query)
