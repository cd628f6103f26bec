"""Commands that take the dataset out and use it: export, export-objects, make-benchmark, train,
eval."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from skyscript_db import evaluate, training
from skyscript_db.objects import export_objects
from skyscript_db.cli.common import DbOption, DeviceOption, progress_bars, say
from skyscript_db.config import ExportConfig, Options
from skyscript_db.db import DEFAULT_DB
from skyscript_db.errors import ExportError
from skyscript_db.etl import pipeline
from skyscript_db.models import TINY, ModelSpec
from skyscript_db.training import TrainConfig

ModelOption = Annotated[str, typer.Option(help="open_clip model (as in `embed`).")]
WeightsOption = Annotated[Optional[str], typer.Option(help="Checkpoint file or pretrained tag.")]
ReportOption = Annotated[Optional[Path], typer.Option(help="Write the report to REPORT.json "
                                                           "and REPORT.md.")]
eval_app = typer.Typer(help="Evaluate a model: zero-shot classification, retrieval.",
                       no_args_is_help=True)


def export(
    out: Annotated[str, typer.Argument(help="Output folder or fsspec URL (s3://bucket/export); "
                                            "replaced when done.")],
    db: DbOption = DEFAULT_DB,
    top: Annotated[float, typer.Option(help="Keep the top this many percent by similarity.")]
    = 100.0,
    collection: Annotated[Optional[str], typer.Option(help="Only this collection code.")] = None,
    where: Annotated[Optional[str], typer.Option(help="SQL predicate over the pairs view.")]
    = None,
    splits: Annotated[str, typer.Option(help="Train,validation,test shares of the pairs.")]
    = "0.8,0.1,0.1",
    block_cells: Annotated[Optional[int], typer.Option(
        help="Split block side, in 0.01° grid cells (default: sized from the data so the "
             "splits meet their shares).")] = None,
    shard_size: Annotated[int, typer.Option(help="Samples per WebDataset shard.")] = 1000,
    webdataset: Annotated[bool, typer.Option(help="Also write WebDataset tar shards.")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the split draw.")] = 0,
    caption: Annotated[str, typer.Option(help="Each sample's caption (.txt, CSV column "
                                              "`caption`): title, title_multi_objects, "
                                              "title_natural, title_multi_objects_natural or "
                                              "rewrite:MODEL.")] = "title",
    layout: Annotated[str, typer.Option(
        help="openclip ({split}.csv) or skyscript (the released SkyScript file names, images "
             "copied; TorchGeo's SkyScript dataset loads it).")] = "openclip",
) -> None:
    """Write the kept pairs as OpenCLIP CSVs and WebDataset shards, split by grid block."""
    try:
        fractions = tuple(float(f) for f in splits.split(","))
    except ValueError as e:
        raise ExportError(f"--splits {splits!r}: give three shares like 0.8,0.1,0.1") from e
    config = ExportConfig(out, top, collection, where, fractions, block_cells,
                          shard_size=shard_size, seed=seed, webdataset=webdataset,
                          caption=caption, layout=layout)
    with progress_bars() as progress:
        results = pipeline.run(db, Options(export=config), ["export"], only="export",
                               on_progress=progress)
    manifest = results["export"].info
    say(f"{out}: {manifest['pairs']:,} pairs in blocks of {manifest['block_cells']} cells; "
        + ", ".join(f"{s} {v['pairs']:,} ({100 * v['share']:.1f} %, {v['cells']:,} cells)"
                    for s, v in manifest["splits"].items()))


def make_benchmark(
    out: Annotated[Path, typer.Argument(help="Output folder (replaced when done).")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Fetch the held-out benchmark's images (build --benchmark-classes K --benchmark-per-class M
    chose them) and write them as a folder of class folders plus benchmark.csv."""
    with progress_bars() as progress:
        results = pipeline.run(db, Options(benchmark_out=out), ["fetch_images", "make_benchmark"],
                               from_stage="fetch_images", on_progress=progress)
    manifest = results["make_benchmark"].info
    short = [c["class_tag"] for c in manifest["classes"] if c["images"] == 0]
    say(f"{out}: {manifest['images']:,} images in {len(manifest['classes'])} classes"
        + (f"; no image for {', '.join(short)}" if short else ""))


def train(
    data: Annotated[Path, typer.Argument(help="An export folder, or a CSV with filepath and "
                                              "caption columns.")],
    out: Annotated[Path, typer.Option(help="Run folder (logs, checkpoints); must be new.")],
    model: ModelOption = TINY,
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
    webdataset: Annotated[bool, typer.Option("--webdataset", help="Read the export's "
                                                                  "WebDataset shards.")] = False,
    rotate: Annotated[bool, typer.Option(help="Random 90° rotations.")] = True,
    device: DeviceOption = "auto",
) -> None:
    """Continue CLIP pre-training (or train a small one from scratch) with open_clip_train."""
    checkpoint = training.train(TrainConfig(data, out, model, pretrained, caption, epochs,
                                            batch_size, lr, warmup, workers, seed, webdataset,
                                            rotate, device))
    say(f"checkpoint: {checkpoint}")


@eval_app.command("zero-shot")
def eval_zero_shot(
    folder: Annotated[Path, typer.Argument(help="A folder of class folders of images.")],
    model: ModelOption = TINY,
    pretrained: WeightsOption = None,
    template: Annotated[Optional[list[str]], typer.Option(help="Prompt with {} for the class "
                                                               "name; repeat for several.")]
    = None,
    report: ReportOption = None,
    device: DeviceOption = "auto",
    classnames: Annotated[Optional[Path], typer.Option(
        help="Class names for the prompts when the folder names are not (clip_benchmark's "
             "convention): one per line in sorted folder order, or JSON, a list or "
             "{folder: name}.")] = None,
) -> None:
    """Top-1, top-5, per-class accuracy and confusion matrix, with the SkyScript prompts."""
    with progress_bars() as progress:
        result = evaluate.zero_shot(folder, ModelSpec(model, pretrained),
                                    tuple(template or evaluate.TEMPLATES),
                                    on_progress=lambda d, t: progress("zero-shot", d, t),
                                    device=device, classnames=classnames)
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
    device: DeviceOption = "auto",
) -> None:
    """Recall@1/5/10 image->text and text->image, and their mean."""
    with progress_bars() as progress:
        result = evaluate.retrieval(csv_file, ModelSpec(model, pretrained), image_key,
                                    caption_key, evaluate.RETRIEVAL_PREFIX if prefix else "",
                                    on_progress=lambda d, t: progress("retrieval", d, t),
                                    device=device)
    _show_report(result, report)


def _show_report(result: dict, report: Path | None) -> None:
    Console().print(evaluate.markdown(result), highlight=False, markup=False)
    if report:
        written = evaluate.write_report(result, report)
        say(f"wrote {written[0]} and {written[1]}")


def objects(
    out: Annotated[Path, typer.Argument(help="GeoParquet file to write (replaced when done).")],
    db: DbOption = DEFAULT_DB,
    where: Annotated[Optional[str], typer.Option(help="SQL predicate over osm_objects, e.g. "
                                                      "\"kind = 'polygon' and tags['building'] "
                                                      "is not null\".")] = None,
) -> None:
    """Write OSM objects (tags, geometry) as GeoParquet, QuackOSM's layout."""
    rows = export_objects(db, out, where)
    say(f"{out}: {rows:,} objects")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("export-objects")(objects)
    app.command("make-benchmark")(make_benchmark)
    app.command("train")(train)
    app.add_typer(eval_app, name="eval")
