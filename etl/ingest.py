"""Stage ingest: .osm.pbf files (paths or URLs) into osm_objects, osm_tags, osm_rejects and
build_info, clipped and tag-filtered as asked."""

from __future__ import annotations

import itertools
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from skyscript_db import queries
from skyscript_db.config import IngestConfig, Options
from skyscript_db.db import has_table, registered
from skyscript_db.errors import InputError
from skyscript_db.etl import build_info, download, osm
from skyscript_db.etl.selection import clip_area, tag_rules
from skyscript_db.etl.stage import Context, ProgressCallback, StageResult, fingerprint

log = logging.getLogger(__name__)

STAGE = "ingest"
AREA_RULES = "area_rules.csv"
SQL = "00_ingest.sql"
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


@dataclass(frozen=True)
class Source:
    """An extract as given (a path or a URL) and the local file it is read from."""

    given: str
    path: Path


@dataclass(frozen=True)
class IngestStage:
    """Reads `options.pbf` (the pipeline resolves it) into temp tables, then replaces what an
    earlier ingest wrote in one transaction: a bad or truncated file leaves the database
    unchanged."""

    name: str = STAGE
    upstream: tuple[str, ...] = ()
    transactional: bool = True
    location_index: str = osm.DEFAULT_LOCATION_INDEX

    def fingerprint(self, ctx: Context, options: Options) -> str:
        """Changes when a file, the clip, the tag filter, the area rules, the SQL or this
        package's version change. A file the database was built from may have moved away
        since: its recorded checksum stands in."""
        recorded = {s["file"]: s["sha256"] for s in build_info.recorded_sources(ctx.con)}
        checksums = []
        for source in sources(options, ctx.progress("download")):
            file = str(source.path.resolve())
            if file not in recorded or source.path.exists():
                check_pbf(source.path)
                recorded[file] = build_info.sha256_of(source.path)
            checksums.append(recorded[file])
        rules = queries.sql_text(f"seeds/{AREA_RULES}")
        return fingerprint(checksums, selection(options.ingest), rules, queries.sql_text(SQL),
                           build_info.version("skyscript-db"))

    def prepare(self, ctx: Context, options: Options) -> None:
        """The reading, before the stage's transaction: it writes temp tables only."""
        found = sources(options, ctx.progress("download"))
        for source in found:
            check_pbf(source.path)
        stage_files(ctx.con, found, options.ingest, self.location_index, ctx.progress(STAGE),
                    scratch=ctx.paths.root)

    def run(self, ctx: Context, options: Options) -> StageResult:
        found = sources(options, ctx.progress("download"))
        return write(ctx.con, found, options.ingest, self.location_index)


def sources(options: Options, on_progress: Callable[[int, int | None], None] | None = None
            ) -> list[Source]:
    """The extracts of `options`, URLs downloaded into the cache (once: later calls reuse it)."""
    if not options.pbf:
        raise InputError("ingest: no .osm.pbf file given")
    return [Source(str(given), download.fetch(str(given), on_progress)
                   if download.is_url(str(given)) else Path(given)) for given in options.pbf]


def selection(config: IngestConfig) -> dict[str, Any]:
    """The clip and tag filter, parsed: bad ones fail here, before anything is read."""
    return {"clip": clip_area(config.clip).wkt if config.clip else None,
            "tags_filter": [asdict(r) for r in tag_rules(config.tags_filter)]
            if config.tags_filter else None}


def stage_files(con: duckdb.DuckDBPyConnection, files: list[Source], config: IngestConfig,
                location_index: str, on_progress: ProgressCallback | None = None,
                scratch: Path | None = None) -> None:
    """Per file, tags, nodes and ways through DuckDB's ST_ReadOSM and relation areas through
    pyosmium, kept by the clip and the tag filter; then the newest version of each element,
    classified by sql/00_ingest.sql. Writes temp tables only (ingest_classified, and what was
    read in ingest_read): DuckDB scans what a transaction wrote several times slower, so this
    runs before the stage's transaction. `on_progress(done, total)` counts the steps. Temporary
    files go to `scratch` (the database's folder, where DuckDB spills too; None: the system's):
    a planet's multipolygons make tens of GB, and /tmp is often small or in memory."""
    q = queries.load(SQL)
    clip = clip_area(config.clip) if config.clip else None
    where = asdict(clip) if clip else {"wkt": None, "west": 0, "south": 0, "east": 0, "north": 0}
    area = {"clip": where.pop("wkt"), **where}
    rules = tag_rules(config.tags_filter) if config.tags_filter else []
    timings: dict[str, float] = {}
    read_counts = {"elements": 0, "tag_filtered": 0, "clipped_ways_relations": 0}
    done = itertools.count(1)

    def step() -> None:
        if on_progress:
            on_progress(next(done), len(files) * _FILE_STEPS)

    for name in ("create_elements", "create_geometries", "create_tag_rules"):
        q[name].run(con)
    if rules:
        con.executemany(q["insert_tag_rule"].text, [asdict(r) for r in rules])
    q["load_area_rules"].run(con, path=queries.seed_path(AREA_RULES))
    q["any_order"].run(con)
    try:
        for number, source in enumerate(files):
            with _timed(timings, "read_s"):
                counts = _read_file(con, number, source, area, rules, location_index, scratch,
                                    step)
            for key in read_counts:
                read_counts[key] += counts[key]
    finally:
        q["in_order"].run(con)
    with _timed(timings, "assemble_s"):
        clipped = q["clip_unplaced"].run(con, clip=area["clip"]).fetchone()[0]
        if len(files) > 1:
            read_counts["duplicates_dropped"] = _keep_newest(con, files)
        q["classify"].run(con)
        clipped += q["clip_objects"].run(con, clip=area["clip"]).fetchone()[0]
        read_counts["clipped_ways_relations"] += clipped
    q["save_read"].run(con, read=json.dumps({**read_counts, **timings}))


def write(con: duckdb.DuckDBPyConnection, files: list[Source], config: IngestConfig,
          location_index: str) -> StageResult:
    """What stage_files left on `con` into osm_objects, osm_tags, osm_rejects and build_info
    (replacing earlier ones); the staging tables go."""
    q = queries.load(SQL)
    read_counts = json.loads(q["read"].row(con)["read"])
    timings = {k: read_counts.pop(k) for k in ("read_s", "assemble_s")}
    with _timed(timings, "write_s"):
        if has_table(con, "osm_tags"):
            q["drop_tags_table"].run(con)
        for name in ("objects", "tags", "rejects", "area_rules"):
            q[name].run(con)
    counts = q["counts"].row(con)
    q["drop_staging"].run(con)
    build_info.write(con, build_info.describe(files, config, location_index,
                                       {**read_counts, **counts}, timings))
    objects = counts["points"] + counts["lines"] + counts["polygons"]
    log.info("ingest %s: %d tagged elements read, %d dropped by the tag filter -> %d objects, "
             "%d rejects", ", ".join(f.path.name for f in files), read_counts["elements"],
             read_counts["tag_filtered"], objects, counts["rejects"])
    return StageResult(rows_in=read_counts["elements"], rows_out=objects,
                       info={**read_counts, **counts, **timings})


# One file's steps, for the progress bar: elements kept, nodes read, ways, relation areas.
_FILE_STEPS = 4


def _read_file(con: duckdb.DuckDBPyConnection, number: int, source: Source, area: dict[str, Any],
               rules: list, location_index: str, scratch: Path | None,
               step: Callable[[], None]) -> dict[str, int]:
    """One file's kept elements and geometries into the staging tables; returns its counts."""
    q = queries.load(SQL)
    with _input_errors(source.path):
        q["read_elements"].run(con, file=number, path=str(source.path), **area)
        for name in ("member_ways", "untagged_ways"):
            q[name].run(con, file=number)
        counts = q["file_counts"].row(con, file=number)
        counts["tag_filtered"] = q["tag_filter"].run(con, file=number).fetchone()[0] \
            if rules else 0
        step()
        q["read_nodes"].run(con, path=str(source.path))
    q["area_relations"].run(con, file=number)
    counts["clipped_ways_relations"] = _clip_ways(con, number, area) if area["clip"] else 0
    step()
    areas = _build_geometries(con, number, location_index, scratch)
    step()
    q["drop_way_inputs"].run(con)
    with registered(con, relation_areas=areas):
        q["load_geometries"].run(con, file=number)
    step()
    return counts


def _clip_ways(con: duckdb.DuckDBPyConnection, number: int, area: dict[str, Any]) -> int:
    """The ways and multipolygons whose bounding box misses the clip's go; returns how many
    ways."""
    q = queries.load(SQL)
    q["clip_node_blocks"].run(con)
    q["clip_way_boxes"].run(con, file=number)
    dropped = q["clip_ways"].run(con, file=number, **_box(area)).fetchone()[0]
    q["clip_relations"].run(con, **_box(area))
    return dropped


def _build_geometries(con: duckdb.DuckDBPyConnection, number: int, location_index: str,
                      scratch: Path | None) -> pa.Table:
    """One file's way geometries into ingest_geometries; returns its relation areas, which
    libosmium assembles meanwhile in a thread: DuckDB lets go of the GIL while a statement
    runs, and libosmium reads and assembles in C++."""
    q = queries.load(SQL)
    with tempfile.TemporaryDirectory(prefix=".skyscript-relations-", dir=scratch) as folder, \
            ThreadPoolExecutor(1) as pool:
        # the thread starts now: one started by the submit below would take the GIL (the
        # submit waits for it to start) and run before the statement that it should overlap
        pool.submit(lambda: None)
        relations = Path(folder) / "relations.opl"
        q["area_ways"].run(con, file=number)
        parts = q["way_parts"].row(con, file=number)["parts"]
        assembled = None
        for part in range(parts):
            q["way_nodes"].run(con, file=number, part=part, parts=parts)
            # pyosmium holds the GIL while it reads: started right before the long statement,
            # not before a short one whose return it would hold up
            assembled = assembled or _assemble_areas(con, pool, relations, location_index)
            q["way_lines"].run(con)
            q["way_geometries"].run(con, file=number)
        return assembled.result()


def _assemble_areas(con: duckdb.DuckDBPyConnection, pool: ThreadPoolExecutor, relations: Path,
                    location_index: str) -> Future[pa.Table]:
    """The multipolygons written to `relations`, assembled by libosmium in `pool`."""
    queries.load(SQL)["area_file"].run(con, path=str(relations))
    return pool.submit(lambda: pa.Table.from_batches(
        osm.relation_areas(relations, location_index=location_index), schema=osm.AREA_SCHEMA))


def _box(area: dict[str, Any]) -> dict[str, float]:
    return {k: area[k] for k in ("west", "south", "east", "north")}


def _keep_newest(con: duckdb.DuckDBPyConnection, files: list[Source]) -> int:
    """Drop all but the newest copy of elements read from several files; returns how many."""
    q = queries.load(SQL)
    wanted = {(r["osm_type"], r["osm_id"]) for r in q["duplicates"].dicts(con)}
    q["create_versions"].run(con)
    if not wanted:
        return 0
    for number, source in enumerate(files):
        with registered(con, file_versions=osm.versions(source.path, wanted)):
            q["insert_versions"].run(con, file=number)
    q["drop_older"].run(con)
    q["delete_older_geometries"].run(con)
    return q["delete_older_elements"].run(con).fetchone()[0]


@contextmanager
def _timed(timings: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[key] = round(timings.get(key, 0) + time.perf_counter() - start, 3)


@contextmanager
def _input_errors(path: Path) -> Iterator[None]:
    """Turn a reader's failure on a damaged file into an InputError naming the file."""
    try:
        yield
    except _READ_ERRORS as e:
        root = e.__cause__ or e  # queries.Query.run wraps DuckDB's error with the SQL file's name
        message = str(root).strip().splitlines()[0]
        raise InputError(f"{path}: truncated or corrupt PBF ({message})") from e
