"""The tag classifier's cache across databases, so a new database with unchanged labels and
encoder pays seconds, not a retrain: text vectors and fitted models in one DuckDB file in the
user's cache folder (db.cache_folder('tag-classifier')), keyed as in a database (encoder id and
text; the model id, which hashes the labels, encoder, grid and library versions). The database
still records the model it used (tag_models). Best effort: a cache file another process holds
is skipped with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from skyscript_db import queries
from skyscript_db.db import cache_folder

log = logging.getLogger(__name__)

SQL = "20_tag_visibility.sql"
FILE = "cache.duckdb"


def run(con: duckdb.DuckDBPyConnection, section: str, **params: str) -> None:
    """Run a cache_pull_* section (cache to database, the cache opened read-only) or a
    cache_push_* one (database to cache) of sql/20_tag_visibility.sql, when the cache is there."""
    with _attached(con, read_only=section.startswith("cache_pull")) as found:
        if found:
            queries.load(SQL)[section].run(con, **params)


@contextmanager
def _attached(con: duckdb.DuckDBPyConnection, read_only: bool) -> Iterator[bool]:
    """The cache attached as `tag_cache` (tables created when writing); False when there is
    none to read or another process holds it."""
    path = cache_folder("tag-classifier") / FILE
    if read_only and not path.exists():
        yield False
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    quoted = str(path).replace("'", "''")  # ATTACH takes no parameters
    try:
        con.execute(f"attach '{quoted}' as tag_cache{' (read_only)' if read_only else ''}")
    except duckdb.IOException as e:
        log.warning("tag classifier cache %s not used: %s", path, str(e).splitlines()[0])
        yield False
        return
    try:
        if not read_only:
            _create_tables(con)
        yield True
    finally:
        con.execute("detach tag_cache")


def _create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The cache's tables, by the very DDL of a database's."""
    database = con.execute("select current_database()").fetchone()[0]
    q = queries.load(SQL)
    con.execute("use tag_cache")
    try:
        q["create_cache"].run(con)
        q["create_models"].run(con)
    finally:
        con.execute(f'use "{database}"')
