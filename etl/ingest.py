"""Stage ingest: an .osm.pbf file into osm_objects, osm_tags, osm_rejects and build_info."""

from __future__ import annotations

import hashlib
import logging
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb

from skyscript_db import queries
from skyscript_db.config import Options
from skyscript_db.db import has_table
from skyscript_db.errors import InputError
from skyscript_db.etl import osm
from skyscript_db.etl.stage import Context, ProgressCallback, StageResult, fingerprint

log = logging.getLogger(__name__)

STAGE = "ingest"
ATTRIBUTION = "© OpenStreetMap contributors, data under the Open Database License (ODbL) 1.0"
AREA_RULES = "area_rules.csv"
_PBF_MAGIC = b"OSMHeader"
# What pyosmium (RuntimeError) and ST_ReadOSM raise on a damaged file; not SQL mistakes of ours.
_READ_ERRORS = (RuntimeError, duckdb.ParserException, duckdb.InvalidInputException,
                duckdb.IOException)


def check_pbf(path: Path) -> None:
    """Fail with a one-line error unless `path` is a readable file that starts like a PBF."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    try:
        with path.open("rb") as f:
            head = f.read(64)
    except OSError as e:
        raise InputError(f"{path}: cannot be read ({e.strerror})") from e
    # A PBF starts with a 4-byte BlobHeader length, then a BlobHeader of type "OSMHeader".
    if len(head) < 4 or _PBF_MAGIC not in head[4:]:
        raise InputError(f"{path}: not an OSM PBF file (no OSMHeader block at the start)")


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


@dataclass(frozen=True)
class IngestStage:
    """Reads `options.pbf` (the pipeline resolves it) and replaces what an earlier ingest wrote,
    in one transaction: a bad or truncated file leaves the database unchanged."""

    name: str = STAGE
    upstream: tuple[str, ...] = ()
    transactional: bool = True
    location_index: str = osm.DEFAULT_LOCATION_INDEX

    def fingerprint(self, ctx: Context, options: Options) -> str:
        """Changes when the file, the area rules or this package's version change. The file the
        database was built from may have moved away since: its recorded checksum stands in."""
        path = _pbf(options)
        recorded = _recorded_sha256(ctx.con) if path == source_file(ctx.con) else None
        if recorded is None or path.exists():
            check_pbf(path)
            recorded = sha256_of(path)
        rules = queries.sql_text(f"seeds/{AREA_RULES}")
        return fingerprint(recorded, rules, _version("skyscript-db"))

    def run(self, ctx: Context, options: Options) -> StageResult:
        path = _pbf(options)
        check_pbf(path)
        return read(ctx.con, path, self.location_index, ctx.progress(STAGE))


def _pbf(options: Options) -> Path:
    if options.pbf is None:
        raise InputError("ingest: no .osm.pbf file given")
    return Path(options.pbf)


def read(con: duckdb.DuckDBPyConnection, path: Path, location_index: str,
         on_progress: ProgressCallback | None = None) -> StageResult:
    """The work of the stage: tags through DuckDB's ST_ReadOSM, geometries through pyosmium,
    joined and classified by sql/00_ingest.sql. `on_progress(done, total)` is called as
    geometries are built (total is an estimate)."""
    q = queries.load("00_ingest.sql")
    timings: dict[str, float] = {}
    done, expected = 0, None

    def progress(n: int) -> None:
        nonlocal done
        done += n
        if on_progress:
            on_progress(done, max(done, expected or 0) or None)

    with (_timed(timings, "read_s"), _input_errors(path),
          osm.GeometryStream(path, location_index=location_index, on_progress=progress) as stream):
        # pyosmium builds geometries in its own thread from here on, while DuckDB reads tags.
        q["read_elements"].run(con, path=str(path))
        q["load_area_rules"].run(con, path=queries.seed_path(AREA_RULES))
        q["points"].run(con)
        q["point_tags"].run(con)
        expected, tagged = q["element_counts"].run(con).fetchone()
        q["create_geometries"].run(con)
        con.register("geometry_stream", stream.reader)
        try:
            q["load_geometries"].run(con)
        finally:
            con.unregister("geometry_stream")
    with _timed(timings, "assemble_s"):
        for name in ("classify", "objects", "tags", "rejects", "area_rules"):
            q[name].run(con)
    counts = q["counts"].row(con)
    q["drop_staging"].run(con)
    _write_build_info(con, _build_info(path, location_index, counts, timings))
    objects = counts["points"] + counts["lines"] + counts["polygons"]
    log.info("ingest %s: %d tagged elements -> %d objects, %d rejects",
             path.name, tagged, objects, counts["rejects"])
    return StageResult(rows_in=tagged, rows_out=objects, info={**counts, **timings})


def source_file(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The extract the database was last ingested from, if any."""
    if not has_table(con, "build_info"):
        return None
    row = queries.load("build_info.sql")["source_file"].row(con)
    return Path(row["value"]) if row else None


def _recorded_sha256(con: duckdb.DuckDBPyConnection) -> str | None:
    row = queries.load("build_info.sql")["source_sha256"].row(con)
    return row["value"] if row else None


def _build_info(path: Path, location_index: str, counts: dict[str, int],
                timings: dict[str, float]) -> dict[str, Any]:
    return {
        "source_file": str(path.resolve()),
        "source_name": path.name,
        "source_sha256": sha256_of(path),
        "source_bytes": path.stat().st_size,
        **osm.read_header(path),
        **counts,
        **timings,
        "location_index": location_index,
        "attribution": ATTRIBUTION,
        "license": "ODbL-1.0",
        "skyscript_db_version": _version("skyscript-db"),
        "duckdb_version": duckdb.__version__,
        "duckdb_spatial_version": _version("duckdb-extension-spatial"),
        "pyosmium_version": _version("osmium"),
        "pyarrow_version": _version("pyarrow"),
        "python_version": platform.python_version(),
    }


def _write_build_info(con: duckdb.DuckDBPyConnection, info: dict[str, Any]) -> None:
    q = queries.load("build_info.sql")
    q["create"].run(con)
    q["clear"].run(con)
    con.executemany(q["insert"].text, [{"key": k, "value": str(v)} for k, v in info.items()])


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


@contextmanager
def _timed(timings: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[key] = round(time.perf_counter() - start, 3)


@contextmanager
def _input_errors(path: Path) -> Iterator[None]:
    """Turn a reader's failure on a damaged file into an InputError naming the file."""
    try:
        yield
    except _READ_ERRORS as e:
        root = e.__cause__ or e  # queries.Query.run wraps DuckDB's error with the SQL file's name
        message = str(root).strip().splitlines()[0]
        raise InputError(f"{path}: truncated or corrupt PBF ({message})") from e
