"""`skyscript-db tags`: the tag classifier (which tags are visible, up to which GSD)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from skyscript_db import queries
from skyscript_db.cli.common import DbOption, DeviceOption, progress_bars, say
from skyscript_db.config import BuildConfig, Options
from skyscript_db.db import DEFAULT_DB, connect, has_table
from skyscript_db.errors import DatabaseError
from skyscript_db.etl import pipeline, tag_visibility
from skyscript_db.etl.tag_classifier import report_markdown
from skyscript_db.models import Models, load_text_encoder

app = typer.Typer(help="The tag classifier: which tags are visible, up to which GSD.",
                  no_args_is_help=True)
TagEncoderOption = Annotated[str, typer.Option(help="minilm (offline) or "
                                                    "open_clip:MODEL[:PRETRAINED].")]


@app.command("train")
def train(db: DbOption = DEFAULT_DB,
          tag_encoder: TagEncoderOption = BuildConfig.tag_encoder,
          device: DeviceOption = "auto") -> None:
    """Train the classifier on the labelled set (5-fold CV), store it and print its report."""
    with connect(db) as con:
        if not has_table(con, "tag_stats"):
            raise DatabaseError(f"{db}: no tag_stats table; build it with `skyscript-db build`")
        model_id, report = tag_visibility.train(con, load_text_encoder(tag_encoder, device))
    say(f"{db}: trained {model_id}")
    Console().print(report_markdown(report), highlight=False, markup=False)


@app.command("predict")
def predict(db: DbOption = DEFAULT_DB,
            tag_encoder: TagEncoderOption = BuildConfig.tag_encoder,
            device: DeviceOption = "auto") -> None:
    """Rerun stage tag_visibility (training first if no model fits); later stages go stale."""
    options = Options(build=BuildConfig(tag_encoder=tag_encoder))
    with progress_bars() as progress:
        pipeline.run(db, options, [tag_visibility.STAGE], only=tag_visibility.STAGE,
                     on_progress=progress, models=Models(device))
    with connect(db, read_only=True) as con:
        Console().print(con.sql(queries.load(tag_visibility.SQL)["verdict_counts"].text))


@app.command("report")
def report(db: DbOption = DEFAULT_DB) -> None:
    """Print the newest stored model's cross-validation report."""
    with connect(db, read_only=True) as con:
        row = tag_visibility.latest_report(con) if has_table(con, "tag_models") else None
        if row is None:
            raise DatabaseError(f"{db}: no tag model; run `skyscript-db tags train`")
    Console().print(f"# {row['model_id']}\n\n{row['n_labels']} labels, text encoder "
                    f"{row['encoder_id']}, trained {row['trained_at']:%Y-%m-%d %H:%M} UTC\n\n"
                    + report_markdown(row["report"]), highlight=False, markup=False)
