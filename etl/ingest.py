"""Stage ingest: an .osm.pbf file into osm_objects, osm_tags, osm_rejects and build_info."""

from __future__ import annotations

import hashlib
import logging
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb

from skyscript_db import queries
from skyscript_db.errors import InputError
from skyscript_db.etl import osm
from skyscript_db.stages import StageResult, fingerprint, run_stage

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
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ingest_fingerprint(digest: str) -> str:
    """Changes when the file, the area rules or this package's version change."""
    rules = queries.sql_text(f"seeds/{AREA_RULES}")
    return fingerprint(STAGE, digest, rules, _version("skyscript-db"))


def ingest(
    con: duckdb.DuckDBPyConnection,
    pbf: str | Path,
    location_index: str = osm.DEFAULT_LOCATION_INDEX,
    on_progress: Callable[[int, int], None] | None = None,
    digest: str | None = None,
) -> StageResult:
    """Read `pbf` into the database on `con`, replacing what an earlier ingest wrote.

    `on_progress(done, total)` is called as geometries are built (total is an estimate).
    Runs in one transaction: a bad or truncated file leaves the database unchanged.
    `digest` is the file's sha256 when the caller already computed it.
    """
    path = Path(pbf)
    check_pbf(path)
    digest = digest or sha256_of(path)
    params = {"pbf": str(path.resolve()), "location_index": location_index}
    body = _IngestBody(path, digest, location_index, on_progress)
    return run_stage(con, STAGE, ingest_fingerprint(digest), params, body)


class _IngestBody:
    """The work of the stage, run by run_stage inside its transaction."""

    def __init__(self, path: Path, digest: str, location_index: str,
                 on_progress: Callable[[int, int], None] | None) -> None:
        self.path, self.digest, self.location_index = path, digest, location_index
        self.on_progress = on_progress

    def __call__(self, con: duckdb.DuckDBPyConnection) -> StageResult:
        q = queries.load("00_ingest.sql")
        timings: dict[str, float] = {}
        done, expected = 0, None

        def progress(n: int) -> None:
            nonlocal done
            done += n
            if self.on_progress:
                self.on_progress(done, max(done, expected or 0) or None)

        with (_timed(timings, "read_s"), _input_errors(self.path),
              osm.GeometryStream(self.path, location_index=self.location_index,
                                 on_progress=progress) as stream):
            # pyosmium builds geometries in its own thread from here on, while DuckDB reads tags.
            q["read_elements"].run(con, path=str(self.path))
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
        info = self._build_info(counts, timings)
        _write_build_info(con, info)
        objects = counts["points"] + counts["lines"] + counts["polygons"]
        log.info("ingest %s: %d tagged elements -> %d objects, %d rejects",
                 self.path.name, tagged, objects, counts["rejects"])
        return StageResult(rows_in=tagged, rows_out=objects, info={**counts, **timings})

    def _build_info(self, counts: dict[str, int], timings: dict[str, float]) -> dict[str, Any]:
        return {
            "source_file": str(self.path.resolve()),
            "source_name": self.path.name,
            "source_sha256": self.digest,
            "source_bytes": self.path.stat().st_size,
            **osm.read_header(self.path),
            **counts,
            **timings,
            "location_index": self.location_index,
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
