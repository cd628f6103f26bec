"""Stage fetch_images: every pending image request -> an image file and an `images` row.

Reader, mapper, writer: the main process reads batches of requests (and, for the render source,
their features) with SQL; workers fetch pixels and write each file atomically (a temp file in the
same folder, then a rename); the main process records every outcome. Files are named
`{a|w|n}{osm_id}_{CODE}_{yy}.jpg` like the released SkyScript dataset (`xx` when the year is
unknown) and sit in `<database stem>_images/<CODE>/` beside the database, referenced by relative
paths. Per-request failures are data (status, error), never a crash.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import duckdb
from PIL import Image

from skyscript_db import queries
from skyscript_db.etl.imagery.base import (Fetched, ImageRequest, NoCoverage, RetryPolicy,
                                           Source)
from skyscript_db.etl.imagery.gee import GeeSource
from skyscript_db.etl.imagery.local import LocalSource
from skyscript_db.etl.imagery.render import Feature, RenderSource
from skyscript_db.etl.imagery.stac import StacSource
from skyscript_db.stages import StageResult, fingerprint, run_stage

log = logging.getLogger(__name__)

STAGE = "fetch_images"
TYPE_LETTER = {"node": "n", "way": "w", "relation": "a"}
CPU_KINDS = {"render", "local"}  # worth processes; stac and gee wait on the network: threads
_REQUEST_FIELDS = [f.name for f in fields(ImageRequest)]


@dataclass(frozen=True)
class FetchConfig:
    workers: int = os.cpu_count() or 2
    batch: int = 256
    retry: RetryPolicy = RetryPolicy()
    jpeg_quality: int = 90
    processes: bool | None = None  # None: processes when a CPU-bound source has work
    gee_project: str | None = None


def image_dir(db: Path) -> Path:
    return db.parent / f"{db.stem}_images"


def file_name(request: ImageRequest, acquired: str | None) -> str:
    year = acquired[2:4] if acquired else "xx"
    return f"{TYPE_LETTER[request.osm_type]}{request.osm_id}_{request.collection_code}_{year}.jpg"


def fetch_images(con: duckdb.DuckDBPyConnection, db: Path, config: FetchConfig = FetchConfig(),
                 on_progress: Callable[[int, int], None] | None = None) -> StageResult:
    """Fetch every pending request; returns counts. Safe to interrupt and rerun."""
    q = queries.load("80_fetch.sql")
    q["create_images"].run(con)
    q["pending"].run(con)
    total = q["pending_count"].row(con)["n"]
    kinds = {k for (k,) in q["pending_kinds"].run(con).fetchall()}
    if "render" in kinds:
        q["render_objects"].run(con, styles_csv=queries.seed_path("render_styles.csv"))
    out = image_dir(db)
    _remove_partial_files(out)
    sources = _sources(con, config)
    counts: dict[str, int] = defaultdict(int)
    started = time.perf_counter()
    with _executor(kinds, config) as pool:
        for batch, payloads in _batches(con, config.batch):
            jobs = [pool.submit(fetch_one, sources[r["collection_code"]], _request(r),
                                payloads.get(r["pair_id"]), out, config.retry,
                                config.jpeg_quality) for r in batch]
            keys = {r["pair_id"]: r["request_key"] for r in batch}
            outcomes = [job.result() for job in as_completed(jobs)]
            con.executemany(q["record"].text,
                            [{**o, "request_key": keys[o["pair_id"]]} for o in outcomes])
            for o in outcomes:
                counts[o["status"]] += 1
            if on_progress:
                on_progress(sum(counts.values()), total)
    seconds = time.perf_counter() - started
    log.info("fetch_images: %d requests in %.1f s (%.1f/s): %s", total, seconds,
             total / seconds if seconds else 0, dict(counts))
    # Outcomes are already committed batch by batch; the stage log row closes the run.
    return run_stage(con, STAGE, fingerprint(STAGE, time.time()), asdict(config) | {"db": str(db)},
                     lambda c: StageResult(total, counts["ok"], info=q["summary"].row(c)))


def fetch_one(source: Source, request: ImageRequest, payload: Any, out: Path,
              retry: RetryPolicy, quality: int) -> dict[str, Any]:
    """Fetch and write one image; the outcome as an `images` row (without request_key)."""
    row: dict[str, Any] = {"pair_id": request.pair_id, "path": None, "error": None,
                           "source": source.name, "acquired": None, "width_px": None,
                           "height_px": None, "bytes": None}
    try:
        fetched: Fetched = retry.call(lambda: source.fetch(request, payload), seed=request.pair_id)
        path = out / request.collection_code / file_name(request, fetched.acquired)
        size = write_jpeg_atomic(path, fetched, quality)
        height, width = fetched.pixels.shape[:2]
        return row | {"status": "ok", "path": str(path.relative_to(out.parent)),
                      "acquired": fetched.acquired, "width_px": width, "height_px": height,
                      "bytes": size}
    except NoCoverage as e:
        return row | {"status": "no_coverage", "error": str(e)}
    except Exception as e:  # one request's failure is recorded as data; the run goes on
        return row | {"status": "failed", "error": f"{type(e).__name__}: {e}"[:1000]}


def write_jpeg_atomic(path: Path, fetched: Fetched, quality: int) -> int:
    """Write to a temp file in the same folder, flush to disk, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with partial.open("wb") as f:
        Image.fromarray(fetched.pixels).save(f, "JPEG", quality=quality)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)
    return path.stat().st_size


def _remove_partial_files(out: Path) -> None:
    """What a killed run was writing; no recorded image is ever a partial file."""
    for partial in out.glob("*/.*.partial"):
        partial.unlink(missing_ok=True)


def _request(row: dict[str, Any]) -> ImageRequest:
    return ImageRequest(**{k: row[k] for k in _REQUEST_FIELDS})


def _batches(con: duckdb.DuckDBPyConnection,
             size: int) -> Iterator[tuple[list[dict[str, Any]], dict[int, list[Feature]]]]:
    """Pending requests in pair_id order, with the render source's features for each batch."""
    q = queries.load("80_fetch.sql")
    after = -1
    for batch in q["next_batch"].pages(con, size):
        payloads: dict[int, list[Feature]] = defaultdict(list)
        if any(r["source_kind"] == "render" for r in batch):
            q["render_hits"].run(con, after=after, until=batch[-1]["pair_id"])
            features = q["render_features"].run(con).fetchall()
            for pair_id, layer, colour, width_px, geojson in features:
                payloads[pair_id].append(Feature(layer, colour, width_px, geojson))
        yield batch, payloads
        after = batch[-1]["pair_id"]


def _sources(con: duckdb.DuckDBPyConnection, config: FetchConfig) -> dict[str, Source]:
    sources: dict[str, Source] = {}
    for row in queries.load("80_fetch.sql")["sources"].dicts(con):
        kind = row["kind"]
        if kind == "render":
            sources[row["code"]] = RenderSource()
        elif kind == "local":
            sources[row["code"]] = LocalSource(row["path"], tuple(row["rgb_bands"]))
        elif kind == "stac":
            sources[row["code"]] = StacSource(row["url"], row["collection"], tuple(row["assets"]),
                                              tuple(row["rgb_bands"]))
        else:
            sources[row["code"]] = GeeSource(row["code"], config.gee_project)
    return sources


def _executor(kinds: set[str], config: FetchConfig) -> Executor:
    use_processes = config.processes if config.processes is not None else bool(kinds & CPU_KINDS)
    if use_processes:  # spawned, not forked: the parent holds DuckDB and GDAL threads
        return ProcessPoolExecutor(config.workers, mp_context=multiprocessing.get_context("spawn"))
    return ThreadPoolExecutor(config.workers)
