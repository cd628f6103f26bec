"""Open DuckDB connections with the spatial extension loaded offline, from its PyPI wheel, and
say where a database keeps its files (`Paths`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from skyscript_db import queries
from skyscript_db.errors import DatabaseError, ExtensionError, InputError

DEFAULT_DB = Path("data/skyscript.duckdb")



@dataclass(frozen=True)
class Paths:
    """Where a database's artefacts live, resolved once: everything sits beside the database file.

    Image paths in the `images` table are relative to `root`, so a database and its folders move
    together.
    """

    db: Path
    root: Path
    images: Path
    index: Path

    @classmethod
    def of(cls, db: str | Path) -> Paths:
        db = Path(db)
        root = db.parent.resolve()
        return cls(db, root, root / f"{db.stem}_images", root / f"{db.stem}_index")


SPATIAL_FIX = (
    "install the wheels that match duckdb {version}: "
    "pip install 'duckdb=={plain}' 'duckdb-extensions=={plain}' 'duckdb-extension-spatial=={plain}'"
)


def cache_folder(kind: str) -> Path:
    """Where this user's caches of one kind live: $SKYSCRIPT_CACHE/<kind>, else the XDG cache
    folder, ~/.cache/skyscript-db/<kind>."""
    if os.environ.get("SKYSCRIPT_CACHE"):
        return Path(os.environ["SKYSCRIPT_CACHE"]) / kind
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "skyscript-db" / kind


def connect(path: str | Path | None = None, read_only: bool = False,
            memory_limit: str | None = None, progress_bar: bool = True
            ) -> duckdb.DuckDBPyConnection:
    """Open the database at `path` (in memory when None) with the spatial extension loaded;
    `memory_limit` is DuckDB's setting (e.g. '512MB'), beyond which it spills to disk;
    `progress_bar=False` keeps DuckDB from drawing its own bar (on a terminal, for statements
    over 2 s), for callers that draw progress themselves.

    The extension comes from the `duckdb-extension-spatial` wheel; automatic installs from the
    network are switched off, so a broken install fails here with a message naming the fix.
    """
    if read_only and path is not None and not Path(path).exists():
        raise DatabaseError(f"{path}: no such database; build it first with `skyscript-db build`")
    config = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    con = duckdb.connect(":memory:" if path is None else str(path), read_only=read_only,
                         config=config)
    if not progress_bar:
        con.execute("set enable_progress_bar = false")  # a connection's own setting
    if memory_limit is not None:
        try:
            set_memory_limit(con, memory_limit)
        except InputError:
            con.close()
            raise
    try:
        load_spatial(con)
    except ExtensionError:
        con.close()
        raise
    return con


def set_memory_limit(con: duckdb.DuckDBPyConnection, memory_limit: str) -> None:
    """DuckDB's memory limit on `con`; a value it cannot read is an InputError naming it."""
    try:
        con.execute("set memory_limit = $limit", {"limit": memory_limit})
    except duckdb.Error as e:
        raise InputError(f"memory limit {memory_limit!r}: not a size DuckDB understands "
                         "(e.g. 512MB, 4GB)") from e


def load_spatial(con: duckdb.DuckDBPyConnection) -> None:
    """Load the spatial extension into `con` from the local wheel, never from the network."""
    version = duckdb.__version__
    fix = SPATIAL_FIX.format(version=version, plain=version.lstrip("v"))
    try:
        import duckdb_extensions

        duckdb_extensions.import_extension("spatial", con=con)
        con.execute("load spatial")
    except ModuleNotFoundError as e:
        raise ExtensionError(f"DuckDB spatial extension is not installed ({e.name}); {fix}") from e
    except (duckdb.Error, OSError) as e:
        first_line = str(e).strip().splitlines()[0]
        raise ExtensionError(
            f"DuckDB spatial extension failed to load ({first_line}); {fix}") from e


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the database has a (non-temporary) table called `name`."""
    return bool(queries.load("stage_runs.sql")["has_table"].run(con, name=name).fetchone()[0])


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, **tables: Any
               ) -> Iterator[duckdb.DuckDBPyConnection]:
    """`tables` (Arrow tables and the like) visible to SQL on `con` under their names for the
    block, and gone after it, also when it fails."""
    for name, table in tables.items():
        con.register(name, table)
    try:
        yield con
    finally:
        for name in tables:
            con.unregister(name)
