"""The build: every stage in order, each skipped when its inputs and parameters are unchanged.

Fingerprints chain: a stage's fingerprint includes the fingerprint and the finish time of the
last run of the stage before it, so a change upstream (a new extract, an edited rule table,
another seed) or a rerun of an upstream stage alone makes every later stage stale.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import duckdb

from skyscript_db.config import BuildConfig
from skyscript_db.db import DEFAULT_DB, connect
from skyscript_db.errors import DatabaseError
from skyscript_db.etl import ingest as ingest_stage
from skyscript_db import queries, sql_stages
from skyscript_db.stages import StageResult, fingerprint, has_table, last_run
from skyscript_db.tag_visibility import TagVisibilityStage

log = logging.getLogger(__name__)

DEFAULT_PBF = Path("data/helsinki.osm.pbf")
ProgressCallback = Callable[[int, int], None]


class Stage(Protocol):
    name: str

    def fingerprint(self, config: BuildConfig, upstream: str) -> str: ...

    def run(self, con: duckdb.DuckDBPyConnection, config: BuildConfig, stage_fingerprint: str,
            on_progress: ProgressCallback | None = None) -> StageResult: ...


# The stages after ingest, in order; tag_visibility runs models, the others only SQL.
STAGES: tuple[Stage, ...] = (sql_stages.STAGES[0], TagVisibilityStage(), *sql_stages.STAGES[1:])
ALL_STAGES = (ingest_stage.STAGE, *(s.name for s in STAGES))


def build(
    pbf: str | Path = DEFAULT_PBF,
    db: str | Path = DEFAULT_DB,
    config: BuildConfig = BuildConfig(),
    force: bool = False,
    only: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> list[str]:
    """Build or update the database at `db` from `pbf`; returns the names of the stages run.

    `only` reruns that one stage whatever its fingerprint (later stages become stale);
    `force` reruns every stage.
    """
    if only is not None and only not in ALL_STAGES:
        raise DatabaseError(f"no stage {only!r}; stages are {', '.join(ALL_STAGES)}")
    path = Path(pbf)
    ingest_stage.check_pbf(path)
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    ran: list[str] = []
    with connect(db) as con:
        digest = ingest_stage.sha256_of(path)
        wanted = ingest_stage.ingest_fingerprint(digest)
        if _should_run(con, ingest_stage.STAGE, wanted, force, only):
            ingest_stage.ingest(con, path, on_progress=on_progress, digest=digest)
            ran.append(ingest_stage.STAGE)
        for stage in STAGES:
            wanted = _wanted(con, stage, config)
            if _should_run(con, stage.name, wanted, force, only):
                stage.run(con, config, wanted, on_progress)
                ran.append(stage.name)
    return ran


def rerun(db: str | Path, name: str, config: BuildConfig = BuildConfig(),
          on_progress: ProgressCallback | None = None) -> None:
    """Run one stage after ingest on an existing database (as `build --only`, without the PBF)."""
    stage = next((s for s in STAGES if s.name == name), None)
    if stage is None:
        raise DatabaseError(f"no stage {name!r} after ingest; stages are "
                            f"{', '.join(s.name for s in STAGES)}")
    with connect(db) as con:
        if last_run(con, _previous(name)) is None:
            raise DatabaseError(f"{db}: stage {_previous(name)} has not run; build first")
        stage.run(con, config, _wanted(con, stage, config), on_progress)


def _wanted(con: duckdb.DuckDBPyConnection, stage: Stage, config: BuildConfig) -> str:
    upstream = fingerprint(last_run(con, _previous(stage.name)),
                           _registered_imagery(con, stage.name))
    return stage.fingerprint(config, upstream)


def _previous(stage: str) -> str:
    return ALL_STAGES[ALL_STAGES.index(stage) - 1]


def _should_run(con: duckdb.DuckDBPyConnection, stage: str, wanted: str, force: bool,
                only: str | None) -> bool:
    if only is not None:
        return stage == only
    previous = last_run(con, stage)
    if force or previous is None or previous[0] != wanted:
        return True
    log.info("%s: up to date", stage)
    return False


def _registered_imagery(con: duckdb.DuckDBPyConnection, stage: str) -> str:
    """Registered rasters and STAC catalogs are inputs of image_collections: their rows join its
    fingerprint."""
    if stage != "image_collections":
        return ""
    q = queries.load("register_imagery.sql")
    sources = (("local_state", "local_imagery"), ("stac_state", "stac_collections"))
    rows = [q[name].run(con).fetchall() if has_table(con, table) else [] for name, table in sources]
    return fingerprint(rows)
