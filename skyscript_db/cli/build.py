"""Commands that run pipeline stages: build, and one command per stage that moves data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from skyscript_db.cli.common import DbOption, DeviceOption, progress_bars, say
from skyscript_db.config import (BuildConfig, ClusterConfig, EmbedConfig, FetchConfig,
                                 IngestConfig, Options)
from skyscript_db.db import DEFAULT_DB
from skyscript_db.errors import ConfigError
from skyscript_db.etl import pipeline
from skyscript_db.models import TINY, ModelSpec, Models, default_tag_encoder

ModelOption = Annotated[str, typer.Option(help="open_clip model name, hf-hub:ORG/REPO or "
                                               "local-dir:PATH.")]
PretrainedOption = Annotated[Optional[str], typer.Option(help="Pretrained tag (e.g. openai) or "
                                                              "a local checkpoint file.")]
WorkersOption = Annotated[int, typer.Option(help="Parallel fetches.")]
GeeOption = Annotated[Optional[str], typer.Option(help="Google Cloud project for Earth Engine.")]
MaxNodataOption = Annotated[float, typer.Option(
    help="Largest share of a crop without imagery that is still ok; more is partial_coverage "
         "(never a pair).")]
KeepPartialOption = Annotated[bool, typer.Option(
    "--keep-partial", help="Keep partial_coverage crops on disk (for a look).")]
ImagesUrlOption = Annotated[Optional[str], typer.Option(
    help="Where image files go: an fsspec URL (s3://bucket/images, gs://…, file://…) or a "
         "folder; default: the folder beside the database.")]
ExecutorOption = Annotated[str, typer.Option(help="Where fetch and embed run: local (a pool "
                                                  "on this machine) or ray.")]
RayAddressOption = Annotated[Optional[str], typer.Option(
    help="With --executor ray: auto or HOST:PORT joins a running cluster; default: "
         "$RAY_ADDRESS, else start Ray on this machine.")]
STAGE_NAMES = ", ".join(pipeline.STAGES)
BboxOption = Annotated[Optional[str], typer.Option(
    help="Keep the objects intersecting this box, W,S,E,N in degrees.")]
GeometryOption = Annotated[Optional[str], typer.Option(
    help="Keep the objects intersecting this area: WKT, GeoJSON, or a file holding either.")]
MemoryLimitOption = Annotated[Optional[str], typer.Option(
    help="DuckDB's memory limit, e.g. 512MB; beyond it DuckDB spills to disk beside the database.")]
TagsFilterOption = Annotated[Optional[str], typer.Option(
    help='Keep objects by tag, QuackOSM\'s JSON: \'{"building": true, "amenity": ["parking"], '
         '"highway": false}\'; * is a wildcard.')]


def ingest_config(bbox: str | None, geometry: str | None,
                  tags_filter: str | None) -> IngestConfig:
    if bbox and geometry:
        raise ConfigError("give --bbox or --geometry, not both")
    return IngestConfig(clip=bbox or geometry, tags_filter=tags_filter)


def _codes(value: str) -> tuple[str, ...]:
    """'CH, US' -> ('CH', 'US')."""
    return tuple(code.strip() for code in value.split(",") if code.strip())


def build(
    pbf: Annotated[Optional[list[str]], typer.Argument(
        help="OpenStreetMap extracts (.osm.pbf paths or http(s) URLs); default: the ones the "
             f"database was built from, else {pipeline.DEFAULT_PBF}.")] = None,
    db: DbOption = DEFAULT_DB,
    bbox: BboxOption = None,
    geometry: GeometryOption = None,
    tags_filter: TagsFilterOption = None,
    seed: Annotated[int, typer.Option(help="Build seed; each stage derives its own.")]
    = BuildConfig.seed,
    cells: Annotated[Optional[int], typer.Option(help="Grid cells to draw (default: --fraction "
                                                      "of the occupied cells).")] = None,
    fraction: Annotated[float, typer.Option(help="Share of occupied cells to draw.")]
    = BuildConfig.fraction,
    rare_threshold: Annotated[int, typer.Option(help="Target visible tags with fewer selected "
                                                     "objects than this.")]
    = BuildConfig.rare_threshold,
    rare_cap: Annotated[int, typer.Option(help="Objects added per rare tag, at most.")]
    = BuildConfig.rare_cap,
    max_surrounding: Annotated[int, typer.Option(help="Surrounding objects per multi-object "
                                                      "caption.")] = BuildConfig.max_surrounding,
    caption_language: Annotated[str, typer.Option(help="Language of the natural captions (any "
                                                       "of the iD tagging schema's: de, fr, "
                                                       "pt-BR, ...).")]
    = BuildConfig.caption_language,
    caption_max_chars: Annotated[int, typer.Option(help="Length cap of the natural "
                                                        "multi-object caption.")]
    = BuildConfig.caption_max_chars,
    imagery: Annotated[str, typer.Option(help="'render' (SYNTHETIC images drawn from OSM, "
                                              "offline) or 'catalog' (Earth Engine collections, "
                                              "needs an account).")]
    = BuildConfig.imagery,
    collections: Annotated[Optional[str], typer.Option(help="Only these collection codes for "
                                                            "image requests, C1,C2 (default: "
                                                            "all).")] = None,
    exclude_collections: Annotated[Optional[str], typer.Option(help="Never these collection "
                                                                    "codes, C1,C2.")] = None,
    prefer: Annotated[str, typer.Option(help="Among an object's candidate collections: 'random' "
                                             "(the paper's draw) or 'finest' (smallest GSD).")]
    = BuildConfig.prefer,
    model: ModelOption = TINY,
    pretrained: PretrainedOption = None,
    tag_encoder: Annotated[Optional[str], typer.Option(help="Tag classifier's text encoder: "
                                                            "minilm (offline) or open_clip:MODEL"
                                                            "[:PRETRAINED]; default: the CLIP "
                                                            "text tower when --pretrained is "
                                                            "given, else minilm.")] = None,
    tag_cache: Annotated[bool, typer.Option("--tag-cache/--no-cache", help="Reuse the tag "
                                            "classifier and text vectors cached for this user "
                                            "(~/.cache/skyscript-db); --no-cache forces a fit.")]
    = BuildConfig.tag_cache,
    benchmark_classes: Annotated[int, typer.Option(help="Hold out a classification benchmark "
                                                        "of this many tag classes (see "
                                                        "make-benchmark).")]
    = BuildConfig.benchmark_classes,
    benchmark_per_class: Annotated[int, typer.Option(help="Objects per benchmark class.")]
    = BuildConfig.benchmark_per_class,
    fetch: Annotated[bool, typer.Option("--fetch", help="Fetch the images too.")] = False,
    embed: Annotated[bool, typer.Option("--embed", help="Then embed them (--model) and build "
                                                       "the index.")] = False,
    workers: WorkersOption = FetchConfig.workers,
    gee_project: GeeOption = None,
    images_url: ImagesUrlOption = None,
    max_nodata: MaxNodataOption = FetchConfig.max_nodata,
    keep_partial: KeepPartialOption = False,
    only: Annotated[Optional[str], typer.Option(help=f"Rerun just this stage: {STAGE_NAMES}.")]
    = None,
    from_stage: Annotated[Optional[str], typer.Option("--from", help="Rerun this stage and every "
                                                                     "later one.")] = None,
    force: Annotated[bool, typer.Option(help="Rerun stages that are up to date.")] = False,
    memory_limit: MemoryLimitOption = None,
    device: DeviceOption = "auto",
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
) -> None:
    """Run every stage in order, skipping those whose inputs and options are unchanged."""
    spec = ModelSpec(model, pretrained)
    config = BuildConfig(seed=seed, n_cells=cells, fraction=fraction,
                         rare_threshold=rare_threshold, rare_cap=rare_cap,
                         max_surrounding=max_surrounding, caption_language=caption_language,
                         caption_max_chars=caption_max_chars, imagery=imagery,
                         tag_encoder=tag_encoder or default_tag_encoder(spec),
                         tag_cache=tag_cache,
                         benchmark_classes=benchmark_classes,
                         benchmark_per_class=benchmark_per_class,
                         collections=_codes(collections) if collections else None,
                         exclude_collections=_codes(exclude_collections or ""), prefer=prefer)
    options = Options(pbf=tuple(pbf or ()), ingest=ingest_config(bbox, geometry, tags_filter),
                      build=config,
                      fetch=FetchConfig(workers=workers, gee_project=gee_project,
                                        images_url=images_url, max_nodata=max_nodata,
                                        keep_partial=keep_partial),
                      embed=EmbedConfig(spec), cluster=ClusterConfig(executor, ray_address),
                      memory_limit=memory_limit)
    _run(db, options, pipeline.build_names(fetch, embed), only=only, from_stage=from_stage,
         force=force, models=Models(device))


def ingest(pbf: Annotated[list[str], typer.Argument(
               help="OpenStreetMap extracts (.osm.pbf paths or http(s) URLs).")],
           db: DbOption = DEFAULT_DB, bbox: BboxOption = None, geometry: GeometryOption = None,
           tags_filter: TagsFilterOption = None, memory_limit: MemoryLimitOption = None) -> None:
    """Read PBF files into osm_objects, osm_tags, osm_rejects and build_info (replacing earlier
    ones); objects in several files keep their newest version."""
    options = Options(pbf=tuple(pbf), ingest=ingest_config(bbox, geometry, tags_filter),
                      memory_limit=memory_limit)
    _run(db, options, ["ingest"], only="ingest")


def fetch_images(
    db: DbOption = DEFAULT_DB,
    workers: WorkersOption = FetchConfig.workers,
    attempts: Annotated[int, typer.Option(help="Tries per image for network errors.")]
    = FetchConfig.attempts,
    gee_project: GeeOption = None,
    images_url: ImagesUrlOption = None,
    max_nodata: MaxNodataOption = FetchConfig.max_nodata,
    keep_partial: KeepPartialOption = False,
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
) -> None:
    """Fetch every image request not fetched yet (or failed, changed, or whose file is gone)."""
    options = Options(fetch=FetchConfig(workers=workers, attempts=attempts,
                                        gee_project=gee_project, images_url=images_url,
                                        max_nodata=max_nodata, keep_partial=keep_partial),
                      cluster=ClusterConfig(executor, ray_address))
    _run(db, options, ["fetch_images"], only="fetch_images")


def embed(
    db: DbOption = DEFAULT_DB,
    model: ModelOption = TINY,
    pretrained: PretrainedOption = None,
    seed: Annotated[int, typer.Option(help="Seed of the random weights when none are given.")]
    = 0,
    batch: Annotated[int, typer.Option("--batch-size", "--batch", help="Pairs per batch.")]
    = EmbedConfig.batch,
    score_caption: Annotated[str, typer.Option(help="Caption scored in the pairs view: title, "
                                                    "title_multi_objects, title_natural, "
                                                    "title_multi_objects_natural or "
                                                    "rewrite:MODEL.")] = "title",
    device: DeviceOption = "auto",
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
    concurrency: Annotated[int, typer.Option(help="With --executor ray: model copies (one per "
                                                  "actor).")] = EmbedConfig.actors,
    num_gpus_per_actor: Annotated[float, typer.Option(help="With --executor ray: GPUs each "
                                                           "actor takes.")]
    = EmbedConfig.gpus_per_actor,
) -> None:
    """Embed fetched images and their captions with CLIP, (re)create the pairs views, and
    rebuild the index."""
    options = Options(embed=EmbedConfig(ModelSpec(model, pretrained, seed), batch, score_caption,
                                        concurrency, num_gpus_per_actor),
                      cluster=ClusterConfig(executor, ray_address))
    _run(db, options, ["embed", "index"], from_stage="embed", models=Models(device))


def index(db: DbOption = DEFAULT_DB) -> None:
    """Build the FAISS indexes (images, captions) for the current model beside the database."""
    _run(db, Options(), ["index"], only="index")


def _run(db: Path, options: Options, names: list[str], models: Models = Models(),
         **selection) -> None:
    with progress_bars() as progress:
        results = pipeline.run(db, options, names, on_progress=progress, models=models,
                               **selection)
    for name, result in results.items():
        line = _SUMMARIES.get(name)
        if line:
            say(f"{db}: " + line(result))
    say(f"{db}: ran {', '.join(results) if results else 'nothing (up to date)'}")


_SUMMARIES = {
    "fetch_images": lambda r: (f"{r.rows_in:,} requests fetched; in all "
                               f"{r.info['rows_out']:,} images ok, {r.info['failed']:,} failed, "
                               f"{r.info['no_coverage']:,} without coverage"),
    "embed": lambda r: (f"{r.info['rows_in']:,} pairs embedded with {r.info['model_id']}, "
                        f"{r.rows_out:,} in all"),
    "index": lambda r: (f"{r.info['n']:,} vectors indexed: " + ", ".join(
        f"{k} {v['type']}" for k, v in r.info["indexes"].items())),
}


def register(app: typer.Typer) -> None:
    app.command()(build)
    app.command()(ingest)
    app.command("fetch-images")(fetch_images)
    app.command()(embed)
    app.command()(index)

