"""The pipeline: every stage in order, in one place, and the code that runs them.

`build` runs the stages of the method from ingest to captions, then (asked) fetch_images, then
(asked) embed and index; export and make_benchmark run on demand. A stage runs when it is stale:
its chained fingerprint (its own, hashed with its upstream stages' recorded ones) differs from
the one its last run recorded. `only` reruns one stage whatever its fingerprint, `from_stage`
reruns a stage and the later ones asked for, `force` reruns everything asked for. The CLI and
`skyscript_db.build` both come here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, replace
from pathlib import Path

import duckdb

from skyscript_db import captions
from skyscript_db.config import (BuildConfig, ClusterConfig, EmbedConfig, FetchConfig,
                                 IndexConfig, IngestConfig, Options)
from skyscript_db.db import DEFAULT_DB, Paths, connect, set_memory_limit
from skyscript_db.errors import ConfigError, DatabaseError
from skyscript_db.etl import download
from skyscript_db.etl.benchmark import MakeBenchmarkStage
from skyscript_db.etl.embeddings import EmbedStage
from skyscript_db.etl.export import ExportStage
from skyscript_db.etl.fetch import FetchStage
from skyscript_db.etl.index import IndexStage
from skyscript_db.etl.build_info import recorded_sources
from skyscript_db.etl.ingest import IngestStage, check_pbf, selection
from skyscript_db.etl.register import registered_state
from skyscript_db.etl.rewrite import RewriteStage
from skyscript_db.etl.sql_stage import SqlStage
from skyscript_db.etl.stage import (Context, Stage, StageResult, fingerprint, last_fingerprint,
                                    record, transaction)
from skyscript_db.etl.tag_visibility import TagVisibilityStage
from skyscript_db.models import Models

log = logging.getLogger(__name__)

DEFAULT_PBF = Path("data/helsinki.osm.pbf")

# The method's stages in run order: build always runs these (when stale).
METHOD: tuple[Stage, ...] = (
    IngestStage(),
    SqlStage("tag_stats", "10_tag_stats.sql", ("ingest",)),
    TagVisibilityStage(),
    SqlStage("grid", "30_grid.sql", ("tag_visibility",), config_fields=("n_cells", "fraction"),
             seeded=True),
    SqlStage("rare_tags", "40_rare_tags.sql", ("grid",),
             config_fields=("rare_threshold", "rare_cap"), seeded=True),
    SqlStage("image_collections", "50_image_collections.sql", ("rare_tags",),
             {"collections_csv": "image_collections.csv"}, ("imagery",), state=registered_state),
    SqlStage("benchmark", "55_benchmark.sql", ("image_collections",),
             config_fields=("benchmark_classes", "benchmark_per_class"), seeded=True),
    SqlStage("image_requests", "60_image_requests.sql", ("benchmark",),
             config_fields=("collections", "exclude_collections", "prefer"), seeded=True),
    SqlStage("captions", captions.SQL_FILE, ("image_requests",), captions.SEEDS,
             ("max_surrounding", "caption_language", "caption_max_chars"),
             before_transaction=("seen_objects", "caption_boxes", "caption_hits",
                                 "caption_slots", "caption_input")),
)
FETCH: tuple[Stage, ...] = (FetchStage(),)
EMBED: tuple[Stage, ...] = (EmbedStage(), IndexStage())
BUILD = METHOD + FETCH + EMBED
# Stages run only when asked: they write files elsewhere (skyscript-db export, make-benchmark)
# or call a service (skyscript-db captions rewrite).
ON_DEMAND: tuple[Stage, ...] = (ExportStage(), MakeBenchmarkStage(), RewriteStage())
STAGES = {stage.name: stage for stage in BUILD + ON_DEMAND}
ProgressCallback = Callable[[str, int, int | None], None]


def build(
    pbf: str | Path | Sequence[str | Path] | None = None,
    db: str | Path = DEFAULT_DB,
    config: BuildConfig = BuildConfig(),
    *,
    ingest: IngestConfig = IngestConfig(),
    fetch: bool | FetchConfig = False,
    embed: bool | EmbedConfig = False,
    cluster: ClusterConfig = ClusterConfig(),
    index: IndexConfig = IndexConfig(),
    only: str | None = None,
    from_stage: str | None = None,
    force: bool = False,
    models: Models = Models(),
    on_progress: ProgressCallback | None = None,
    memory_limit: str | None = None,
) -> list[str]:
    """Build or update the database at `db`; returns the names of the stages that ran.

    pbf: the extract, or several (paths or http(s) URLs); None reuses the ones the database was
        built from (else the default extract, data/helsinki.osm.pbf).
    ingest: the clip and tag filter.
    fetch, embed: go on to fetch the images, then to embed them and build the index (True, or
        that stage's config).
    cluster: where fetch and embed run: here (the default) or on Ray.
    memory_limit: DuckDB's memory limit (e.g. '512MB'); beyond it DuckDB spills to disk.
    """
    given = () if pbf is None else (pbf,) if isinstance(pbf, (str, Path)) else tuple(pbf)
    options = Options(
        pbf=tuple(str(p) for p in given), ingest=ingest, build=config,
        fetch=fetch if isinstance(fetch, FetchConfig) else FetchConfig(),
        embed=embed if isinstance(embed, EmbedConfig) else EmbedConfig(), cluster=cluster,
        index=index,
        memory_limit=memory_limit)
    results = run(db, options, build_names(bool(fetch), bool(embed)), only=only,
                  from_stage=from_stage, force=force, models=models, on_progress=on_progress)
    return list(results)


def build_names(fetch: bool, embed: bool) -> list[str]:
    """The stages `build` runs: the method's, then fetch, then embed and index, as asked."""
    return [s.name for s in METHOD + (FETCH if fetch else ()) + (EMBED if embed else ())]


def run(db: str | Path, options: Options, names: Sequence[str], *, only: str | None = None,
        from_stage: str | None = None, force: bool = False, models: Models = Models(),
        on_progress: ProgressCallback | None = None) -> dict[str, StageResult]:
    """Run the stale stages among `names` (in pipeline order); returns what each run did."""
    stages, forced = _select(names, only, from_stage, force)
    paths = Paths.of(db)
    # Checked before the database file is created: a bad call leaves no empty database behind.
    if stages[0].name != "ingest" and not paths.db.exists():
        raise DatabaseError(f"{paths.db}: no such database; build it first with "
                            "`skyscript-db build`")
    if stages[0].name == "ingest":  # URLs downloaded into the cache now, files checked
        selection(options.ingest)
        report = (lambda d, t: on_progress("download", d, t)) if on_progress else None
        for given in options.pbf:
            if download.is_url(given):
                download.fetch(given, report)
            else:
                check_pbf(Path(given))
    if options.memory_limit is not None:
        with duckdb.connect() as scratch:
            set_memory_limit(scratch, options.memory_limit)
    paths.db.parent.mkdir(parents=True, exist_ok=True)
    results: dict[str, StageResult] = {}
    # A caller drawing progress (on_progress) gets no second bar from DuckDB beside its own.
    with connect(paths.db, memory_limit=options.memory_limit,
                 progress_bar=on_progress is None) as con:
        ctx = Context(con, paths, models, on_progress)
        if not options.pbf:
            recorded = tuple(s["file"] for s in recorded_sources(con))
            options = replace(options, pbf=recorded or (str(DEFAULT_PBF),))
        for stage in stages:
            _check_upstream(ctx, stage)
            wanted = chained_fingerprint(ctx, stage, options)
            if stage.name not in forced and last_fingerprint(con, stage.name) == wanted:
                log.info("%s: up to date", stage.name)
                continue
            results[stage.name] = execute(ctx, stage, options)
    return results


def chained_fingerprint(ctx: Context, stage: Stage, options: Options) -> str:
    upstream = [last_fingerprint(ctx.con, name) for name in stage.upstream]
    return fingerprint(stage.name, stage.fingerprint(ctx, options), upstream)


def execute(ctx: Context, stage: Stage, options: Options) -> StageResult:
    """Run one stage and record it; a transactional stage commits both together or nothing."""
    started = time.perf_counter()
    if prepare := getattr(stage, "prepare", None):
        prepare(ctx, options)
    with transaction(ctx.con) if stage.transactional else nullcontext():
        result = stage.run(ctx, options)
        _record(ctx, stage, options, result, started)
    log.info("%s: %d rows in, %d rows out, %.2f s", stage.name, result.rows_in, result.rows_out,
             time.perf_counter() - started)
    return result


def _record(ctx: Context, stage: Stage, options: Options, result: StageResult,
            started: float) -> None:
    # Computed after the run: a stage whose inputs include its outputs records what it left.
    done = chained_fingerprint(ctx, stage, options)
    record(ctx.con, stage.name, done, time.perf_counter() - started, result, asdict(options))


def _select(names: Sequence[str], only: str | None, from_stage: str | None,
            force: bool) -> tuple[list[Stage], set[str]]:
    """The stages to consider, in pipeline order, and those to run whatever their fingerprint:
    `only` alone; `from_stage` and the stages of `names` after it; with `force`, all."""
    for name in (only, from_stage):
        if name is not None and name not in STAGES:
            raise ConfigError(f"no stage {name!r}; stages are {', '.join(STAGES)}")
    if only is not None:
        return [STAGES[only]], {only}
    order = list(STAGES)
    start = order.index(from_stage) if from_stage is not None else 0
    wanted = [n for n in order[start:] if n in names or n == from_stage]
    return [STAGES[n] for n in wanted], set(wanted) if force or from_stage else set()


def _check_upstream(ctx: Context, stage: Stage) -> None:
    for name in stage.upstream:
        if last_fingerprint(ctx.con, name) is None:
            raise DatabaseError(f"{ctx.paths.db}: stage {name} has not run, so {stage.name} "
                                f"cannot; build first (`skyscript-db build --db {ctx.paths.db}`"
                                + (" --fetch" if name == "fetch_images" else "")
                                + (" --embed" if name == "embed" else "") + ")")
