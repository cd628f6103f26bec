"""The build: every stage in order, each skipped when its inputs and parameters are unchanged.

Fingerprints chain: a stage's fingerprint includes the fingerprint and the finish time of the
last run of the stage before it, so a change upstream (a new extract, an edited rule table,
another seed) or a rerun of an upstream stage alone makes every later stage stale.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import duckdb

from skyscript_db.config import BuildConfig
from skyscript_db.db import DEFAULT_DB, connect
from skyscript_db.errors import DatabaseError
from skyscript_db.etl import ingest as ingest_stage
from skyscript_db.sql_stages import STAGE_NAMES, STAGES, run_sql_stage
from skyscript_db import queries
from skyscript_db.stages import fingerprint, has_table, last_run

log = logging.getLogger(__name__)

DEFAULT_PBF = Path("data/helsinki.osm.pbf")
ALL_STAGES = (ingest_stage.STAGE, *STAGE_NAMES)
ProgressCallback = Callable[[int, int], None]


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
            upstream = fingerprint(last_run(con, _previous(stage.name)),
                                   _registered_imagery(con, stage.name))
            wanted = stage.fingerprint(config, upstream)
            if _should_run(con, stage.name, wanted, force, only):
                run_sql_stage(con, stage, config, wanted)
                ran.append(stage.name)
    return ran


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
