"""Stage embed: CLIP embeddings of fetched images and their captions, batch by batch.

Reader (SQL: images not yet embedded by this model), mapper (the model, all cores), writer (SQL:
one insert per batch, committed). A rerun embeds only what is new for the configured model; the
`pairs` views are (re)created at the end with the model and the caption to score.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
from PIL import Image

from skyscript_db import queries
from skyscript_db.embed import ModelSpec, load_encoder, vector_lists
from skyscript_db.stages import StageResult, fingerprint, run_stage

log = logging.getLogger(__name__)

STAGE = "embed"
VIEW_SECTIONS = ("settings", "pairs", "top_views", "top30", "top50")


@dataclass(frozen=True)
class EmbedConfig:
    model: ModelSpec = ModelSpec()
    batch: int = 64
    score_caption: str = "title"  # or "title_multi_objects"


def embed(con: duckdb.DuckDBPyConnection, db: Path, config: EmbedConfig = EmbedConfig(),
          on_progress: Callable[[int, int], None] | None = None) -> StageResult:
    if config.score_caption not in ("title", "title_multi_objects"):
        raise ValueError(f"score_caption must be 'title' or 'title_multi_objects', "
                         f"got {config.score_caption!r}")
    q = queries.load("90_embeddings.sql")
    model_id = config.model.model_id
    encoder = load_encoder(config.model)
    q["create"].run(con)
    q["create_models"].run(con)
    q["register_model"].run(con, model_id=model_id, name=config.model.name,
                            pretrained=config.model.pretrained, seed=config.model.seed,
                            untrained=config.model.untrained, dim=encoder.dim)
    q["pending"].run(con, model_id=model_id)
    total = q["pending_count"].row(con)["n"]
    done = 0
    for batch in q["next_batch"].pages(con, config.batch):
        images = [_open_rgb(db.parent / r["path"]) for r in batch]
        table = pa.table({
            "pair_id": pa.array([r["pair_id"] for r in batch], pa.int64()),
            "image": vector_lists(encoder.images(images)),
            "title": vector_lists(encoder.texts([r["title"] for r in batch])),
            "title_multi_objects": vector_lists(
                encoder.texts([r["title_multi_objects"] for r in batch])),
        })
        con.register("embedding_batch", table)
        q["insert"].run(con, model_id=model_id)
        con.unregister("embedding_batch")
        done += len(batch)
        if on_progress:
            on_progress(done, total)

    def views(c: duckdb.DuckDBPyConnection) -> StageResult:
        q["settings"].run(c, model_id=model_id, score_caption=config.score_caption)
        for name in VIEW_SECTIONS[1:]:
            q[name].run(c)
        summary = q["summary"].row(c, model_id=model_id)
        return StageResult(summary["rows_in"], summary["rows_out"], info=summary)

    params = asdict(config) | {"model_id": model_id}
    result = run_stage(con, STAGE, fingerprint(STAGE, params, total), params, views)
    log.info("embed %s: %d new pairs, %d embedded in all", model_id, total, result.rows_out)
    return result


def _open_rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")
