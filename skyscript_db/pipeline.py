"""The build: every stage in order, each skipped when its inputs and parameters are unchanged."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from skyscript_db.db import DEFAULT_DB, connect
from skyscript_db.etl import ingest as ingest_stage
from skyscript_db.stages import last_fingerprint

log = logging.getLogger(__name__)

DEFAULT_PBF = Path("data/helsinki.osm.pbf")
ProgressCallback = Callable[[int, int], None]


def build(
    pbf: str | Path = DEFAULT_PBF,
    db: str | Path = DEFAULT_DB,
    force: bool = False,
    on_progress: ProgressCallback | None = None,
) -> list[str]:
    """Build or update the database at `db` from `pbf`; returns the names of the stages run."""
    path = Path(pbf)
    ingest_stage.check_pbf(path)
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    ran: list[str] = []
    with connect(db) as con:
        digest = ingest_stage.sha256_of(path)
        wanted = ingest_stage.ingest_fingerprint(path, digest)
        if force or last_fingerprint(con, ingest_stage.STAGE) != wanted:
            ingest_stage.ingest(con, path, on_progress=on_progress, digest=digest)
            ran.append(ingest_stage.STAGE)
        else:
            log.info("ingest: up to date with %s (sha256 %s…)", path.name, digest[:12])
    return ran
