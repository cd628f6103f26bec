"""What ingest records in table build_info: every extract read (path or URL, checksum, PBF
header), the selection, the counts and timings, the attribution and every library's version."""

from __future__ import annotations

import hashlib
import json
import platform
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from skyscript_db import queries
from skyscript_db.config import IngestConfig
from skyscript_db.db import has_table
from skyscript_db.etl import osm
from skyscript_db.etl.selection import clip_area

if TYPE_CHECKING:
    from skyscript_db.etl.ingest import Source

ATTRIBUTION = "© OpenStreetMap contributors, data under the Open Database License (ODbL) 1.0"


def sha256_of(path: Path) -> str:
    """The file's sha256; computed once per file version (path, size, mtime) in a process."""
    stat = path.stat()
    return _sha256(path.resolve(), stat.st_size, stat.st_mtime_ns)


@cache
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def recorded_sources(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The extracts the database was last ingested from: given, file, sha256, ...; empty if
    none."""
    if not has_table(con, "build_info"):
        return []
    row = queries.load("build_info.sql")["sources"].row(con)
    return json.loads(row["value"]) if row.get("value") else []


def describe(files: list[Source], config: IngestConfig, location_index: str,
                counts: dict[str, int], timings: dict[str, float]) -> dict[str, Any]:
    described = [{"given": f.given, "file": str(f.path.resolve()), "name": f.path.name,
                  "sha256": sha256_of(f.path), "bytes": f.path.stat().st_size,
                  **osm.read_header(f.path)} for f in files]
    return {
        "sources": json.dumps(described),
        # One extract, as databases built before several were possible record it.
        **({f"source_{k}": described[0][k] for k in ("file", "name", "sha256", "bytes")}
           if len(files) == 1 else {}),
        **({"clip": clip_area(config.clip).wkt} if config.clip else {}),
        **({"tags_filter": config.tags_filter} if config.tags_filter else {}),
        **counts,
        **timings,
        "location_index": location_index,
        "attribution": ATTRIBUTION,
        "license": "ODbL-1.0",
        "skyscript_db_version": version("skyscript-db"),
        "duckdb_version": duckdb.__version__,
        "duckdb_spatial_version": version("duckdb-extension-spatial"),
        "pyosmium_version": version("osmium"),
        "pyarrow_version": version("pyarrow"),
        "python_version": platform.python_version(),
    }


def write(con: duckdb.DuckDBPyConnection, info: dict[str, Any]) -> None:
    q = queries.load("build_info.sql")
    q["create"].run(con)
    q["clear"].run(con)
    con.executemany(q["insert"].text, [{"key": k, "value": str(v)} for k, v in info.items()])


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"
