"""Any selection of a database's OSM objects as GeoParquet, in QuackOSM's layout (feature_id
'way/123', tags as a map, WKB geometry in lon/lat with GeoParquet metadata), for GeoPandas,
QuackOSM or DuckDB users."""

from __future__ import annotations

import os
from pathlib import Path

from skyscript_db.db import connect
from skyscript_db.readonly import select_where

COLUMNS = ("osm_type || '/' || osm_id AS feature_id", "osm_type", "osm_id", "kind", "tags",
           "geom AS geometry")


def export_objects(db: str | Path, out: str | Path, where: str | None = None) -> int:
    """Write the objects `where` selects (a read-only SQL predicate over osm_objects; None: all)
    to the GeoParquet file `out` (written whole or not at all); returns how many."""
    query = select_where("osm_objects", where, COLUMNS) + " ORDER BY osm_type, osm_id"
    out = Path(out)
    partial = out.with_name(f".{out.name}.partial")
    with connect(db, read_only=True) as con:
        relation = con.sql(query)
        relation.write_parquet(str(partial), compression="zstd")
        rows = con.execute("select count(*) from read_parquet($p)", {"p": str(partial)}
                           ).fetchone()[0]
    os.replace(partial, out)
    return rows
