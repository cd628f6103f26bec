"""The one shape of a stage, and the log every run leaves in table stage_runs.

A stage has a name, the stages it reads from (`upstream`), a fingerprint of its own inputs and
options, and `run(ctx, options)`. The pipeline (etl/pipeline.py) chains fingerprints: what it
records is the stage's own fingerprint hashed with its upstream stages' recorded ones, so a change
anywhere upstream makes every stage below it stale. It is computed again after the run, so a
stage whose inputs include what it writes (files on disk) records the state it left behind.

A `transactional` stage runs inside one transaction together with its stage_runs row: it commits
everything or nothing. The others (fetch, embed, index, the tag classifier's text cache) commit
batch by batch so that a killed run resumes; their row is written when they finish. A stage may
also have `prepare(ctx, options)`, run just before its transaction, for work that writes only
temp tables (etl/sql_stage.py says why).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import duckdb

from skyscript_db import queries
from skyscript_db.config import Options
from skyscript_db.db import Paths, has_table
from skyscript_db.models import Models

ProgressCallback = Callable[[int, int | None], None]


@dataclass
class StageResult:
    """What a stage did: rows read, rows written, and facts worth keeping."""

    rows_in: int
    rows_out: int
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """What every stage works with: the connection, where the artefacts live, the models, and a
    progress callback `(stage, done, total)`."""

    con: duckdb.DuckDBPyConnection
    paths: Paths
    models: Models = field(default_factory=Models)
    on_progress: Callable[[str, int, int | None], None] | None = None

    def progress(self, stage: str) -> ProgressCallback | None:
        """A `(done, total)` callback for one stage, or None when nobody listens."""
        if self.on_progress is None:
            return None
        report = self.on_progress
        return lambda done, total: report(stage, done, total)


class Stage(Protocol):
    name: str
    upstream: tuple[str, ...]
    transactional: bool

    def fingerprint(self, ctx: Context, options: Options) -> str:
        """A hash of this stage's own inputs and options (never the clock)."""

    def run(self, ctx: Context, options: Options) -> StageResult: ...


def fingerprint(*parts: Any) -> str:
    """A stable hash of JSON-serialisable parts."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def last_fingerprint(con: duckdb.DuckDBPyConnection, stage: str) -> str | None:
    """The fingerprint of the stage's last recorded run; None if it never ran."""
    if not has_table(con, "stage_runs"):
        return None
    row = queries.load("stage_runs.sql")["last_run"].row(con, stage=stage)
    return row.get("fingerprint")


def record(con: duckdb.DuckDBPyConnection, stage: str, stage_fingerprint: str, seconds: float,
           result: StageResult, params: dict[str, Any]) -> None:
    """Append the run's stage_runs row."""
    q = queries.load("stage_runs.sql")
    q["create"].run(con)
    q["record"].run(con, stage=stage, fingerprint=stage_fingerprint, seconds=seconds,
                    rows_in=result.rows_in, rows_out=result.rows_out,
                    params=json.dumps(params, default=str),
                    info=json.dumps(result.info, default=str))


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Commit what the block did, or roll all of it back on any error."""
    con.begin()
    try:
        yield con
    except BaseException:
        con.rollback()
        raise
    con.commit()
