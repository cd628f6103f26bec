"""Stage fetch_images: every pending image request -> an image file and an `images` row.

Reader, mapper, writer: the main process reads batches of requests (and, for the render source,
their features) with SQL; workers (a local pool, or Ray tasks: `ClusterConfig`) fetch pixels for
chunks of a batch and write each file atomically (a temp file in the same folder, then a rename);
the main process records every outcome, batch by batch. Files are named
`{a|w|n}{osm_id}_{CODE}_{yy}.jpg` like the released SkyScript dataset (`xx` when the year is
unknown) and sit in `<database stem>_images/<CODE>/` beside the database (`Paths.images`),
referenced by paths relative to the database's folder, or under `images_url` (any fsspec URL,
recorded in full; skyscript_db/storage.py). Per-request failures are data (status,
error), never a crash.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import (Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor,
                                as_completed)
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from PIL import Image

from skyscript_db import queries, storage
from skyscript_db.config import ClusterConfig, FetchConfig, Options
from skyscript_db.db import has_table, registered
from skyscript_db.errors import NoCoverage, SourceUnavailable
from skyscript_db.etl import cluster, register
from skyscript_db.etl.imagery.base import Fetched, ImageRequest, RetryPolicy, Source
from skyscript_db.etl.imagery.render import Feature, RenderSource
from skyscript_db.etl.stage import Context, ProgressCallback, StageResult, fingerprint

log = logging.getLogger(__name__)

STAGE = "fetch_images"
SQL = "80_fetch.sql"
TYPE_LETTER = {"node": "n", "way": "w", "relation": "a"}
CPU_KINDS = {"render", "local"}  # worth processes; stac and gee wait on the network: threads
_REQUEST_FIELDS = [f.name for f in fields(ImageRequest)]
OUTCOME = pa.schema([("pair_id", pa.int64()), ("path", pa.string()), ("status", pa.string()),
                     ("error", pa.string()), ("source", pa.string()), ("acquired", pa.string()),
                     ("width_px", pa.int32()), ("height_px", pa.int32()), ("bytes", pa.int64()),
                     ("collection", pa.string()), ("coverage", pa.float64())])


def file_name(request: ImageRequest, acquired: str | None, collection: str) -> str:
    """The paper's naming: object, collection the pixels came from, two-digit year."""
    year = acquired[2:4] if acquired else "xx"
    return f"{TYPE_LETTER[request.osm_type]}{request.osm_id}_{collection}_{year}.jpg"


@dataclass(frozen=True)
class FetchStage:
    """Fetch every pending request: no image yet, failed, changed (request_key), or recorded
    `ok` but its file is gone. Not one transaction: outcomes commit batch by batch, so a killed
    run keeps them and the next one resumes."""

    name: str = STAGE
    upstream: tuple[str, ...] = ("image_requests",)
    transactional: bool = False

    def fingerprint(self, ctx: Context, options: Options) -> str:
        """The outcome-changing options and the state of the outputs: every `images` row and
        whether its file is on disk (so deleted files make the stage stale)."""
        state = None
        if has_table(ctx.con, "images"):
            _register_listing(ctx, options.fetch)
            state = queries.load(SQL)["state"].row(ctx.con)
        config = options.fetch
        return fingerprint(config.jpeg_quality, config.max_nodata, config.keep_partial, state)

    def run(self, ctx: Context, options: Options) -> StageResult:
        con, config, on_progress = ctx.con, options.fetch, ctx.progress(STAGE)
        q = queries.load(SQL)
        q["create_images"].run(con)
        q["images_collection"].run(con)
        _register_listing(ctx, config)
        q["pending"].run(con, max_nodata=config.max_nodata)
        sources = _sources(con, config)
        codes = [code for (code,) in q["pending_codes"].run(con).fetchall()]
        unavailable = _unavailable({code: sources[code] for code in codes})
        skipped = q["skip_codes"].run(con, codes=list(unavailable)).fetchone()[0]
        total = q["pending_count"].row(con)["n"]
        kinds = {k for (k,) in q["pending_kinds"].run(con).fetchall()}
        if "render" in kinds:
            q["render_objects"].run(con, styles_csv=queries.seed_path("render_styles.csv"))
        _remove_partial_files(ctx.paths.images)
        out = config.images_url or ctx.paths.images
        retry = RetryPolicy(attempts=config.attempts)
        counts: dict[str, int] = defaultdict(int)
        started = time.perf_counter()
        with _executor(kinds, config, options.cluster) as (pool, parallel):
            in_flight: list[Future] = []
            # The next batch is read and sent before the one in flight is awaited, so the
            # workers never wait on the SQL that prepares their work.
            for batch, payloads in _batches(con, config.batch):
                jobs = [pool.submit(fetch_many, [(sources[r["collection_code"]], _request(r),
                                                  payloads.get(r["pair_id"])) for r in chunk],
                                    out, retry, config.jpeg_quality, config.max_nodata,
                                    config.keep_partial)
                        for chunk in _chunks(batch, parallel)]
                _record(con, in_flight, counts, on_progress, total)
                in_flight = jobs
            _record(con, in_flight, counts, on_progress, total)
        seconds = time.perf_counter() - started
        log.info("fetch_images: %d requests in %.1f s (%.1f/s): %s", total, seconds,
                 total / seconds if seconds else 0, dict(counts))
        if unavailable:  # after the others are done and recorded: a rerun resumes
            raise SourceUnavailable(f"{skipped} requests left for a later run. "
                                    + _explain(unavailable))
        return StageResult(total, counts["ok"], info=q["summary"].row(con))


def _record(con: duckdb.DuckDBPyConnection, jobs: list[Future], counts: dict[str, int],
            on_progress: ProgressCallback | None, total: int) -> None:
    """Wait for one batch, commit its outcomes in one statement, count them."""
    outcomes = [o for job in as_completed(jobs) for o in job.result()]
    if not outcomes:
        return
    with registered(con, fetch_outcomes=pa.Table.from_pylist(outcomes, OUTCOME)):
        queries.load(SQL)["record"].run(con)
    for o in outcomes:
        counts[o["status"]] += 1
    if on_progress:
        on_progress(sum(counts.values()), total)


def fetch_many(jobs: list[tuple[Source, ImageRequest, Any]], out: str | Path, retry: RetryPolicy,
               quality: int, max_nodata: float = FetchConfig.max_nodata,
               keep_partial: bool = False) -> list[dict[str, Any]]:
    """One worker's share of a batch: a task per chunk, not per image, keeps the cost of
    sending work (to a process or a Ray node) small beside the fetching."""
    return [fetch_one(source, request, payload, out, retry, quality, max_nodata, keep_partial)
            for source, request, payload in jobs]


def fetch_one(source: Source, request: ImageRequest, payload: Any, out: str | Path,
              retry: RetryPolicy, quality: int, max_nodata: float = FetchConfig.max_nodata,
              keep_partial: bool = False) -> dict[str, Any]:
    """Fetch and write one image; the outcome as an `images` row (`OUTCOME`). A crop with more
    than `max_nodata` of it without imagery is `partial_coverage`, written only if
    `keep_partial`."""
    row: dict[str, Any] = {"pair_id": request.pair_id, "path": None, "error": None,
                           "source": source.name, "acquired": None, "width_px": None,
                           "height_px": None, "bytes": None, "collection": None,
                           "coverage": None}
    try:
        fetched: Fetched = retry.call(lambda: source.fetch(request, payload), seed=request.pair_id)
        coverage = fetched.meta.get("coverage")
        status = "partial_coverage" if coverage is not None and coverage < 1 - max_nodata \
            else "ok"
        row |= {"status": status, "acquired": fetched.acquired, "coverage": coverage}
        if status != "ok" and not keep_partial:
            return row | {"error": f"{1 - coverage:.1%} of the crop has no imagery"}
        collection = fetched.collection or request.collection_code
        where = storage.join(str(out), collection, file_name(request, fetched.acquired,
                                                             collection))
        size = storage.write_atomic(where, jpeg(fetched, quality))
        height, width = fetched.pixels.shape[:2]
        # beside the database: relative to its folder (they move together); else the URL
        path = where if storage.is_url(out) else str(Path(where).relative_to(Path(out).parent))
        return row | {"path": path, "width_px": width, "height_px": height, "bytes": size,
                      "collection": collection}
    except NoCoverage as e:
        return row | {"status": "no_coverage", "error": str(e)}
    except Exception as e:  # one request's failure is recorded as data; the run goes on
        return row | {"status": "failed", "error": f"{type(e).__name__}: {e}"[:1000]}


def jpeg(fetched: Fetched, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(fetched.pixels).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _register_listing(ctx: Context, config: FetchConfig) -> None:
    """The image files as temp table image_files (path as in `images.path`, and size): SQL
    compares them with what `images` records. Both places are listed: files fetched before
    `images_url` changed are still where their rows say."""
    root, paths, sizes = ctx.paths.root, [], []
    if ctx.paths.images.is_dir():
        for folder in os.scandir(ctx.paths.images):
            for entry in os.scandir(folder.path) if folder.is_dir() else ():
                if not entry.name.startswith("."):
                    paths.append(str(Path(entry.path).relative_to(root)))
                    sizes.append(entry.stat().st_size)
    if config.images_url:
        urls, url_sizes = storage.listing(config.images_url)
        paths, sizes = paths + urls, sizes + url_sizes
    listing = pa.table({"path": pa.array(paths, pa.string()), "bytes": pa.array(sizes, pa.int64())})
    with registered(ctx.con, image_listing=listing):
        queries.load(SQL)["listing"].run(ctx.con)


def _remove_partial_files(out: Path) -> None:
    """What a killed run was writing; no recorded image is ever a partial file."""
    for partial in out.glob("*/.*.partial"):
        partial.unlink(missing_ok=True)


def _request(row: dict[str, Any]) -> ImageRequest:
    return ImageRequest(**{k: row[k] for k in _REQUEST_FIELDS})


def _batches(con: duckdb.DuckDBPyConnection,
             size: int) -> Iterator[tuple[list[dict[str, Any]], dict[int, list[Feature]]]]:
    """Pending requests in pair_id order, with the render source's features for each batch."""
    q = queries.load(SQL)
    after = -1
    for batch in q["next_batch"].pages(con, size):
        payloads: dict[int, list[Feature]] = defaultdict(list)
        if any(r["source_kind"] == "render" for r in batch):
            q["render_hits"].run(con, after=after, until=batch[-1]["pair_id"])
            q["render_clipped"].run(con)
            features = q["render_features"].run(con).fetchall()
            for pair_id, layer, colour, width_px, geojson in features:
                payloads[pair_id].append(Feature(layer, colour, width_px, geojson))
        yield batch, payloads
        after = batch[-1]["pair_id"]


def _sources(con: duckdb.DuckDBPyConnection, config: FetchConfig) -> dict[str, Source]:
    # imported here, not at the top: rasterio and the STAC and Earth Engine clients take 0.15 s
    # to import, which every command (an ingest, a query) would pay
    from skyscript_db.etl.imagery.gee import GeeSource
    from skyscript_db.etl.imagery.local import LocalSource
    from skyscript_db.etl.imagery.stac import StacSource

    register.create_tables(con)  # a database registered by an older version: its columns
    sources: dict[str, Source] = {}
    for row in queries.load(SQL)["sources"].dicts(con):
        kind = row["kind"]
        if kind == "render":
            sources[row["code"]] = RenderSource()
        elif kind == "local":
            sources[row["code"]] = LocalSource(row["path"], tuple(row["rgb_bands"]))
        elif kind == "stac":
            sources[row["code"]] = StacSource(
                row["url"], row["collection"], tuple(row["assets"]), tuple(row["rgb_bands"]),
                row["datetime"], row["max_cloud"], sortby=row["sortby"],
                modifier=row["modifier"], options=tuple(row["options"] or ()),
                stretch=tuple(row["stretch"]) if row["stretch"] else None)
        else:
            sources[row["code"]] = GeeSource(row["code"], config.gee_project)
    return sources


def _unavailable(sources: dict[str, Source]) -> dict[str, str]:
    """{code: why} of the sources that cannot work now (each asked once)."""
    unavailable = {}
    for code, source in sources.items():
        try:
            source.check()
        except SourceUnavailable as e:
            unavailable[code] = str(e)
            log.error("fetch_images: %s cannot work now: %s", code, e)
    return unavailable


def _explain(unavailable: dict[str, str]) -> str:
    """'CH, ES: why; X: why', the codes that share a reason together."""
    codes: dict[str, list[str]] = defaultdict(list)
    for code, why in unavailable.items():
        codes[why].append(code)
    return "; ".join(f"{', '.join(names)}: {why}" for why, names in codes.items())


def _chunks(batch: list[dict[str, Any]], parallel: int) -> Iterator[list[dict[str, Any]]]:
    """About two chunks per worker, so a slow chunk does not hold the batch back for long."""
    size = max(1, -(-len(batch) // (2 * parallel)))
    return (batch[i:i + size] for i in range(0, len(batch), size))


@contextmanager
def _executor(kinds: set[str], config: FetchConfig,
              where: ClusterConfig) -> Iterator[tuple[Executor, int]]:
    """The pool and how many chunks it runs at once: Ray tasks on the cluster's CPUs, else
    `workers` processes (CPU-bound sources) or threads (sources that wait on the network)."""
    if where.executor == "ray":
        pool: Executor = cluster.RayPool(where)
        parallel = cluster.cluster_cpus()
    elif config.processes if config.processes is not None else bool(kinds & CPU_KINDS):
        # spawned, not forked: the parent holds DuckDB and GDAL threads
        pool = ProcessPoolExecutor(config.workers, mp_context=multiprocessing.get_context("spawn"))
        parallel = config.workers
    else:
        pool, parallel = ThreadPoolExecutor(config.workers), config.workers
    with pool:
        yield pool, parallel
