"""The `skyscript-db` command line: one subcommand per stage, plus ad hoc SQL and info."""

from __future__ import annotations

import enum
import io
import json
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator, Optional

import duckdb
import pyarrow.csv
import pyarrow.parquet
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task,
                           TextColumn, TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table
from rich.text import Text

from skyscript_db import evaluate, pipeline, readonly, tag_visibility, training
from skyscript_db.config import BuildConfig
from skyscript_db.db import DEFAULT_DB, connect
from skyscript_db.errors import DatabaseError, SkyscriptError
from skyscript_db.etl import ingest as ingest_stage
from skyscript_db.embed import TINY, ModelSpec
from skyscript_db.etl import embeddings, fetch, register
from skyscript_db.etl.embeddings import EmbedConfig
from skyscript_db.etl.benchmark import write_benchmark
from skyscript_db.etl.export import ExportConfig, ExportError, export
from skyscript_db.etl.index import build_index, index_dir
from skyscript_db.stages import has_table
from skyscript_db.tag_classifier import report_markdown
from skyscript_db.text_encoders import MINILM, OPEN_CLIP
from skyscript_db.training import TrainConfig
from skyscript_db.etl.fetch import FetchConfig
from skyscript_db.etl.imagery.base import RetryPolicy

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
console = Console(stderr=True)

DbOption = Annotated[Path, typer.Option("--db", help="DuckDB database file.")]
PbfArgument = Annotated[Path, typer.Argument(help="OpenStreetMap extract (.osm.pbf).")]


class Format(str, enum.Enum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug detail.")]
         = False,
         quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Log warnings only.")] = False
         ) -> None:
    """Build SkyScript-style image-text datasets from OpenStreetMap in one DuckDB database."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]",
                        handlers=[RichHandler(console=console, show_path=False)])


@contextmanager
def _errors() -> Iterator[None]:
    """Print our errors as one line and exit non-zero, instead of a traceback."""
    try:
        yield
    except (SkyscriptError, duckdb.Error) as e:
        # DuckDB errors reach here from user SQL; their first line says what is wrong.
        message = str(e).strip().splitlines()[0]
        console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True, markup=True)
        raise typer.Exit(1) from e


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.1f}/s" if task.speed else "?/s")


@contextmanager
def _progress(description: str, unit: str = "objects") -> Iterator[pipeline.ProgressCallback]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn(unit), _Rate(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(description, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


@app.command()
def ingest(pbf: PbfArgument, db: DbOption = DEFAULT_DB) -> None:
    """Read PBF into osm_objects, osm_tags, osm_rejects and build_info (replacing earlier ones)."""
    with _errors(), _progress(f"ingest {pbf.name}") as progress:
        ingest_stage.check_pbf(pbf)  # before the database file is created
        db.parent.mkdir(parents=True, exist_ok=True)
        with connect(db) as con:
            ingest_stage.ingest(con, pbf, on_progress=progress)


@app.command()
def build(
    pbf: Annotated[Path, typer.Argument(help="OpenStreetMap extract (.osm.pbf).")]
    = pipeline.DEFAULT_PBF,
    db: DbOption = DEFAULT_DB,
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
    imagery: Annotated[str, typer.Option(help="'catalog' (Earth Engine collections) or 'render' "
                                              "(SYNTHETIC images drawn from OSM, offline).")]
    = BuildConfig.imagery,
    model: Annotated[str, typer.Option(help="CLIP model for --embed (as in `embed`).")] = TINY,
    pretrained: Annotated[Optional[str], typer.Option(help="Its weights (as in `embed`); with "
                                                           "weights, its text tower is also the "
                                                           "tag encoder.")] = None,
    tag_encoder: Annotated[Optional[str], typer.Option(help="Tag classifier's text encoder: "
                                                            "minilm (offline) or open_clip:MODEL"
                                                            "[:PRETRAINED].")] = None,
    benchmark_classes: Annotated[int, typer.Option(help="Hold out a classification benchmark "
                                                        "of this many tag classes (see "
                                                        "make-benchmark).")]
    = BuildConfig.benchmark_classes,
    benchmark_per_class: Annotated[int, typer.Option(help="Objects per benchmark class.")]
    = BuildConfig.benchmark_per_class,
    fetch_: Annotated[bool, typer.Option("--fetch", help="Fetch the images too "
                                                         "(fetch-images).")] = False,
    embed_: Annotated[bool, typer.Option("--embed", help="Then embed with the default model and "
                                                        "build the index (embed, index).")]
    = False,
    only: Annotated[Optional[str], typer.Option(help="Rerun just this stage: "
                                                     + ", ".join(pipeline.ALL_STAGES))] = None,
    force: Annotated[bool, typer.Option(help="Rerun stages that are up to date.")] = False,
) -> None:
    """Run every stage in order, skipping those whose inputs and parameters are unchanged."""
    with _errors(), _progress(f"build {pbf.name}") as progress:
        spec = ModelSpec(model, pretrained)
        config = BuildConfig(seed=seed, n_cells=cells, fraction=fraction,
                             rare_threshold=rare_threshold, rare_cap=rare_cap,
                             max_surrounding=max_surrounding, imagery=imagery,
                             tag_encoder=tag_encoder or _default_tag_encoder(spec),
                             benchmark_classes=benchmark_classes,
                             benchmark_per_class=benchmark_per_class)
        ran = pipeline.build(pbf, db, config, force=force, only=only, on_progress=progress)
    if fetch_:
        fetch_images(db=db)
    if embed_:
        embed(db=db, model=model, pretrained=pretrained)
        index(db=db)
    console.print(f"{db}: ran {', '.join(ran) if ran else 'nothing (up to date)'}", soft_wrap=True,
                  highlight=False)


def _default_tag_encoder(spec: ModelSpec) -> str:
    """The CLIP text tower when the build has CLIP weights (as the paper), else MiniLM."""
    if spec.untrained:
        return MINILM
    return f"{OPEN_CLIP}{spec.name}" + (f":{spec.pretrained}" if spec.pretrained else "")


tags_app = typer.Typer(help="The tag classifier: which tags are visible, up to which GSD.",
                       no_args_is_help=True)
app.add_typer(tags_app, name="tags")
TagEncoderOption = Annotated[str, typer.Option(help="minilm (offline) or "
                                                    "open_clip:MODEL[:PRETRAINED].")]


@tags_app.command("train")
def tags_train(db: DbOption = DEFAULT_DB,
               tag_encoder: TagEncoderOption = BuildConfig.tag_encoder) -> None:
    """Train the classifier on the labelled set (5-fold CV), store it and print its report."""
    with _errors(), connect(db) as con:
        config = BuildConfig(tag_encoder=tag_encoder)
        if not has_table(con, "tag_stats"):
            raise DatabaseError(f"{db}: no tag_stats table; build it with `skyscript-db build`")
        model_id, report = tag_visibility.train(con, config)
    console.print(f"{db}: trained {model_id}", highlight=False)
    Console().print(report_markdown(report), highlight=False, markup=False)


@tags_app.command("predict")
def tags_predict(db: DbOption = DEFAULT_DB,
                 tag_encoder: TagEncoderOption = BuildConfig.tag_encoder) -> None:
    """Rerun stage tag_visibility (training first if no model fits); later stages go stale."""
    with _errors(), _progress("embed tags", unit="texts") as progress:
        config = BuildConfig(tag_encoder=tag_encoder)
        pipeline.rerun(db, tag_visibility.STAGE, config, on_progress=progress)
    with _errors(), connect(db, read_only=True) as con:
        Console().print(con.sql("select source, visible, count(*) as tags from tag_visibility "
                                "group by all order by all"))


@tags_app.command("report")
def tags_report(db: DbOption = DEFAULT_DB) -> None:
    """Print the newest stored model's cross-validation report."""
    with _errors(), connect(db, read_only=True) as con:
        row = tag_visibility.latest_report(con) if has_table(con, "tag_models") else None
        if row is None:
            raise DatabaseError(f"{db}: no tag model; run `skyscript-db tags train`")
    Console().print(f"# {row['model_id']}\n\n{row['n_labels']} labels, text encoder "
                    f"{row['encoder_id']}, trained {row['trained_at']:%Y-%m-%d %H:%M} UTC\n\n"
                    + report_markdown(row["report"]), highlight=False, markup=False)


@app.command("fetch-images")
def fetch_images(
    db: DbOption = DEFAULT_DB,
    workers: Annotated[int, typer.Option(help="Parallel fetches.")] = os.cpu_count() or 2,
    attempts: Annotated[int, typer.Option(help="Tries per image for network errors.")] = 4,
    gee_project: Annotated[Optional[str], typer.Option(help="Google Cloud project for Earth "
                                                            "Engine.")] = None,
) -> None:
    """Fetch every image request not fetched yet (or failed, or changed) into files beside DB."""
    config = FetchConfig(workers=workers, retry=RetryPolicy(attempts=attempts),
                         gee_project=gee_project)
    with _errors(), connect(db) as con, _progress("fetch images", unit="images") as progress:
        result = fetch.fetch_images(con, db, config, on_progress=progress)
    info = result.info
    console.print(f"{db}: {info['rows_in']:,} requests fetched; in all {info['rows_out']:,} "
                  f"images ok, {info['failed']:,} failed, {info['no_coverage']:,} without "
                  "coverage", highlight=False)


@app.command()
def embed(
    db: DbOption = DEFAULT_DB,
    model: Annotated[str, typer.Option(help="open_clip model name, hf-hub:ORG/REPO or "
                                            "local-dir:PATH.")] = TINY,
    pretrained: Annotated[Optional[str], typer.Option(help="Pretrained tag (e.g. openai) or a "
                                                           "local checkpoint file.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random weights when none are given.")]
    = 0,
    batch: Annotated[int, typer.Option(help="Pairs per batch.")] = 64,
    score_caption: Annotated[str, typer.Option(help="Caption scored in the pairs view: title or "
                                                    "title_multi_objects.")] = "title",
) -> None:
    """Embed fetched images and their captions with CLIP; (re)create the pairs views."""
    config = EmbedConfig(ModelSpec(model, pretrained, seed), batch, score_caption)
    with _errors(), connect(db) as con, _progress("embed", unit="pairs") as progress:
        result = embeddings.embed(con, db, config, on_progress=progress)
    console.print(f"{db}: {result.rows_in:,} pairs embedded with {config.model.model_id}, "
                  f"{result.rows_out:,} in all", highlight=False, soft_wrap=True)


@app.command()
def index(db: DbOption = DEFAULT_DB) -> None:
    """Build the FAISS indexes (images, captions) for the current model beside the database."""
    with _errors(), connect(db, read_only=True) as con:
        manifest = build_index(con, db)
    console.print(f"{db}: {manifest['n']:,} vectors indexed in {index_dir(db)}: "
                  + ", ".join(f"{k} {v['type']}" for k, v in manifest["indexes"].items()),
                  highlight=False, soft_wrap=True)


@app.command()
def retrieve(
    text: Annotated[Optional[str], typer.Argument(help="What to look for.")] = None,
    k: Annotated[int, typer.Option("-k", help="How many pairs.")] = 10,
    where: Annotated[Optional[str], typer.Option(help="SQL predicate over the pairs view.")]
    = None,
    image: Annotated[Optional[Path], typer.Option(help="Search by this image instead.")] = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """The best-matching image-caption pairs for a text (or an image), as a table."""
    from skyscript_db import retrieval

    with _errors():
        if (text is None) == (image is None):
            raise SkyscriptError("give a TEXT or --image PATH")
        frame = retrieval.retrieve(text, k, where, db) if image is None \
            else retrieval.retrieve_by_image(image, k, where, db)
    table = Table(show_lines=False)
    for column in ("rank", "score", "pair_id", "collection_code", "title", "image_path"):
        table.add_column(column)
    for row in frame.itertuples():
        table.add_row(str(row.rank), f"{row.score:.4f}", str(row.pair_id), row.collection_code,
                      row.title, row.image_path)
    Console().print(table)


@app.command("export")
def export_command(
    out: Annotated[Path, typer.Argument(help="Output folder (replaced when done).")],
    db: DbOption = DEFAULT_DB,
    top: Annotated[float, typer.Option(help="Keep the top this many percent by similarity.")]
    = 100.0,
    collection: Annotated[Optional[str], typer.Option(help="Only this collection code.")] = None,
    where: Annotated[Optional[str], typer.Option(help="SQL predicate over the pairs view.")]
    = None,
    splits: Annotated[str, typer.Option(help="Train,validation,test shares of the blocks.")]
    = "0.8,0.1,0.1",
    block_cells: Annotated[int, typer.Option(help="Split block side, in 0.01° grid cells.")]
    = 10,
    shard_size: Annotated[int, typer.Option(help="Samples per WebDataset shard.")] = 1000,
    webdataset: Annotated[bool, typer.Option(help="Also write WebDataset tar shards.")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the split draw.")] = 0,
) -> None:
    """Write the kept pairs as OpenCLIP CSVs and WebDataset shards, split by grid block."""
    with _errors(), connect(db) as con, _progress("export", unit="pairs") as progress:
        try:
            fractions = tuple(float(f) for f in splits.split(","))
        except ValueError as e:
            raise ExportError(f"--splits {splits!r}: give three shares like 0.8,0.1,0.1") from e
        config = ExportConfig(top, collection, where, fractions, block_cells, shard_size, seed,
                              webdataset)
        manifest = export(con, db, out, config, on_progress=progress)
    console.print(f"{out}: {manifest['pairs']:,} pairs; " + ", ".join(
        f"{s} {v['pairs']:,} ({v['cells']:,} cells)" for s, v in manifest["splits"].items()),
        highlight=False, soft_wrap=True)


@app.command("train")
def train_command(
    data: Annotated[Path, typer.Argument(help="An export folder, or a CSV with filepath and "
                                              "caption columns.")],
    out: Annotated[Path, typer.Option(help="Run folder (logs, checkpoints); must be new.")],
    model: Annotated[str, typer.Option(help="open_clip model (as in `embed`).")] = TINY,
    pretrained: Annotated[Optional[str], typer.Option(help="Checkpoint or pretrained tag to "
                                                           "continue from (SkyCLIP style); none "
                                                           "trains from scratch.")] = None,
    caption: Annotated[str, typer.Option(help="CSV caption column.")] = "title",
    epochs: Annotated[int, typer.Option(help="Epochs.")] = TrainConfig.epochs,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = TrainConfig.batch_size,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = TrainConfig.lr,
    warmup: Annotated[int, typer.Option(help="Warm-up steps.")] = TrainConfig.warmup,
    workers: Annotated[int, typer.Option(help="Data loader workers.")] = TrainConfig.workers,
    seed: Annotated[int, typer.Option(help="Seed.")] = TrainConfig.seed,
    webdataset_: Annotated[bool, typer.Option("--webdataset", help="Read the export's "
                                                                   "WebDataset shards.")] = False,
    rotate: Annotated[bool, typer.Option(help="Random 90° rotations.")] = True,
) -> None:
    """Continue CLIP pre-training (or train a small one from scratch) with open_clip_train."""
    with _errors():
        checkpoint = training.train(TrainConfig(
            data, out, model, pretrained, caption, epochs, batch_size, lr, warmup, workers,
            seed, webdataset_, rotate))
    console.print(f"checkpoint: {checkpoint}", highlight=False, soft_wrap=True)


@app.command("make-benchmark")
def make_benchmark(
    out: Annotated[Path, typer.Argument(help="Output folder (replaced when done).")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Fetch the held-out benchmark's images (build --benchmark-classes K --benchmark-per-class M
    chose them) and write them as a folder of class folders plus benchmark.csv."""
    fetch_images(db=db)
    with _errors(), connect(db) as con:
        manifest = write_benchmark(con, db, out)
    short = [c["class_tag"] for c in manifest["classes"] if c["images"] == 0]
    console.print(f"{out}: {manifest['images']:,} images in {len(manifest['classes'])} classes"
                  + (f"; no image for {', '.join(short)}" if short else ""), highlight=False,
                  soft_wrap=True)


eval_app = typer.Typer(help="Evaluate a model: zero-shot classification, retrieval.",
                       no_args_is_help=True)
app.add_typer(eval_app, name="eval")
ModelOption = Annotated[str, typer.Option(help="open_clip model (as in `embed`).")]
WeightsOption = Annotated[Optional[str], typer.Option(help="Checkpoint file or pretrained tag.")]
ReportOption = Annotated[Optional[Path], typer.Option(help="Write the report to REPORT.json "
                                                           "and REPORT.md.")]


@eval_app.command("zero-shot")
def eval_zero_shot(
    folder: Annotated[Path, typer.Argument(help="A folder of class folders of images.")],
    model: ModelOption = TINY,
    pretrained: WeightsOption = None,
    template: Annotated[Optional[list[str]], typer.Option(help="Prompt with {} for the class "
                                                               "name; repeat for several.")]
    = None,
    report: ReportOption = None,
) -> None:
    """Top-1, top-5, per-class accuracy and confusion matrix, with the SkyScript prompts."""
    with _errors(), _progress("zero-shot", unit="images") as progress:
        result = evaluate.zero_shot(folder, ModelSpec(model, pretrained),
                                    tuple(template or evaluate.TEMPLATES), on_progress=progress)
    _show_report(result, report)


@eval_app.command("retrieval")
def eval_retrieval(
    csv_file: Annotated[Path, typer.Argument(help="CSV of image paths and captions (e.g. an "
                                                  "export's test.csv).")],
    model: ModelOption = TINY,
    pretrained: WeightsOption = None,
    image_key: Annotated[str, typer.Option(help="Image path column.")] = "filepath",
    caption_key: Annotated[str, typer.Option(help="Caption column.")] = "title",
    prefix: Annotated[bool, typer.Option(help=f"Prefix captions with "
                                              f"'{evaluate.RETRIEVAL_PREFIX}'.")] = False,
    report: ReportOption = None,
) -> None:
    """Recall@1/5/10 image->text and text->image, and their mean."""
    with _errors(), _progress("retrieval", unit="images") as progress:
        result = evaluate.retrieval(csv_file, ModelSpec(model, pretrained), image_key,
                                    caption_key, evaluate.RETRIEVAL_PREFIX if prefix else "",
                                    on_progress=progress)
    _show_report(result, report)


def _show_report(result: dict, report: Path | None) -> None:
    Console().print(evaluate.markdown(result), highlight=False, markup=False)
    if report:
        written = evaluate.write_report(result, report)
        console.print(f"wrote {written[0]} and {written[1]}", highlight=False, soft_wrap=True)


def _bands(value: Optional[str]) -> Optional[list[int]]:
    return [int(b) for b in value.split(",")] if value else None


@app.command("add-imagery")
def add_imagery(
    paths: Annotated[list[Path], typer.Argument(help="GeoTIFF/COG files, any CRS.")],
    db: DbOption = DEFAULT_DB,
    code: Annotated[Optional[str], typer.Option(help="Collection code (one file only); default "
                                                     "LOCAL_<FILE STEM>.")] = None,
    bands: Annotated[Optional[str], typer.Option(help="RGB band numbers, e.g. 3,2,1 (default: "
                                                      "the file's colour bands, else 1,2,3).")]
    = None,
) -> None:
    """Register local rasters as imagery collections (real footprint, CRS and GSD)."""
    with _errors(), connect(db) as con:
        for info in register.add_imagery(con, paths, code, _bands(bands)):
            console.print(f"{info.code}: {info.crs}, GSD {info.gsd_m:g} m, {info.bands} bands "
                          f"{info.dtype}, RGB {info.rgb_bands} — {info.path}", soft_wrap=True,
                          highlight=False)


@app.command("add-stac")
def add_stac(
    url: Annotated[str, typer.Argument(help="STAC API root, or a static catalog/collection JSON.")],
    code: Annotated[str, typer.Option(help="Collection code for image_requests and file names.")],
    gsd: Annotated[float, typer.Option(help="Ground sample distance of the imagery, metres.")],
    db: DbOption = DEFAULT_DB,
    collection: Annotated[Optional[str], typer.Option(help="STAC collection id.")] = None,
    assets: Annotated[str, typer.Option(help="One asset with the RGB bands, or three single-band "
                                             "assets in R,G,B order.")] = "visual",
    bands: Annotated[str, typer.Option(help="RGB band numbers in a one-asset COG.")] = "1,2,3",
) -> None:
    """Register a STAC catalog as an imagery collection (read by HTTP range requests)."""
    with _errors(), connect(db) as con:
        register.add_stac(con, url, code, gsd, collection, assets.split(","), _bands(bands))
    console.print(f"{code}: {url}", highlight=False)


@app.command("sql")
def sql_command(
    query: Annotated[str, typer.Argument(help="SELECT, WITH, DESCRIBE, SHOW, EXPLAIN or "
                                              "SUMMARIZE.")],
    db: DbOption = DEFAULT_DB,
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    output: Annotated[Optional[Path], typer.Option("--output", "-o",
                                                   help="Write to this file, not stdout.")] = None,
) -> None:
    """Run a read-only query; the database file is never modified."""
    with _errors():
        relation = readonly.sql(query, db)
        if format is Format.table:
            _emit(str(relation), output)  # DuckDB's box renderer elides the middle of long results
        elif format is Format.parquet:
            if output is None:
                raise SkyscriptError("--format parquet needs --output FILE")
            pyarrow.parquet.write_table(relation.to_arrow_table(), output)
        elif format is Format.csv:
            buffer = io.BytesIO()
            pyarrow.csv.write_csv(relation.to_arrow_table(), buffer)
            _emit(buffer.getvalue().decode(), output)
        else:
            names = relation.columns
            lines = (json.dumps(dict(zip(names, row)), default=str) for row in relation.fetchall())
            _emit("".join(line + "\n" for line in lines), output)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)


@app.command()
def info(db: DbOption = DEFAULT_DB) -> None:
    """Show build_info, the stage log and every table's row count."""
    with _errors(), connect(db, read_only=True) as con:
        if not has_table(con, "build_info"):
            raise DatabaseError(f"{db}: no build_info table; build it with `skyscript-db build`")
        out = Console()
        for title, query in (
            ("build_info", "select key, value from build_info order by key"),
            ("stages", "select stage, finished_at, round(seconds, 2) as seconds, rows_in, rows_out "
                       "from stage_runs order by finished_at"),
            ("tables", "select table_name, estimated_size as rows from duckdb_tables() "
                       "where not temporary order by table_name"),
        ):
            relation = con.sql(query)
            table = Table(title=title, title_justify="left")
            for column in relation.columns:
                table.add_column(column)
            for row in relation.fetchall():
                table.add_row(*(str(v) for v in row))
            out.print(table)
