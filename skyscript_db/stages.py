"""Run a stage as one transaction and log it in table stage_runs.

A stage either commits all its outputs together with its stage_runs row or leaves the database as
it was. A stage's fingerprint hashes its inputs and parameters; `build` skips a stage whose last
run has the same fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from skyscript_db import queries

log = logging.getLogger(__name__)


@dataclass
class StageResult:
    """What a stage did: rows read, rows written, and facts worth keeping."""

    rows_in: int
    rows_out: int
    info: dict[str, Any] = field(default_factory=dict)


def fingerprint(*parts: Any) -> str:
    """A stable hash of JSON-serialisable parts."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def last_run(con: duckdb.DuckDBPyConnection, stage: str) -> tuple[str, str] | None:
    """(fingerprint, finish time) of the stage's last committed run, None if it never ran."""
    if not has_table(con, "stage_runs"):
        return None
    row = queries.load("stage_runs.sql")["last_run"].run(con, stage=stage).fetchone()
    return (row[0], row[1]) if row else None


def run_stage(
    con: duckdb.DuckDBPyConnection,
    stage: str,
    stage_fingerprint: str,
    params: dict[str, Any],
    body: Callable[[duckdb.DuckDBPyConnection], StageResult],
    started: float | None = None,
) -> StageResult:
    """Run `body` inside one transaction and record it; on any error, roll everything back.

    `started` (a time.time()) counts work the stage did before its transaction began.
    """
    q = queries.load("stage_runs.sql")
    started = started or time.time()
    con.begin()
    try:
        result = body(con)
        seconds = time.time() - started
        q["create"].run(con)
        q["record"].run(
            con,
            stage=stage,
            fingerprint=stage_fingerprint,
            seconds=seconds,
            rows_in=result.rows_in,
            rows_out=result.rows_out,
            params=json.dumps(params, default=str),
            info=json.dumps(result.info, default=str),
        )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    log.info("%s: %d rows in, %d rows out, %.2f s", stage, result.rows_in, result.rows_out, seconds)
    return result


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(queries.load("stage_runs.sql")["has_table"].run(con, name=name).fetchone()[0])
