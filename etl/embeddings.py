"""Stage embed: CLIP embeddings of fetched images and their captions, batch by batch.

Reader (SQL: pairs this model has not embedded from their current image and captions), mapper
(`embed_rows`: the model, on its device; here, or on Ray Data with one model per actor), writer
(SQL: one insert per batch, committed). A rerun embeds only what is new or changed (a refetched
image, an edited caption); the `pairs` views are (re)created at the end with the model and the
caption to score.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import pyarrow as pa

from skyscript_db import captions, queries, storage
from skyscript_db.config import EmbedConfig, Options
from skyscript_db.db import registered
from skyscript_db.etl import cluster
from skyscript_db.etl.stage import Context, StageResult, fingerprint, transaction
from skyscript_db.models import ImageTextEncoder, Models, ModelSpec, vector_lists

log = logging.getLogger(__name__)

STAGE = "embed"
SQL = "90_embeddings.sql"
VIEW_SECTIONS = ("pairs", "top_views", "top30", "top50")


@dataclass(frozen=True)
class EmbedStage:
    """Not one transaction: every batch of vectors commits, so a killed run resumes."""

    name: str = STAGE
    upstream: tuple[str, ...] = ("fetch_images", "captions")
    transactional: bool = False

    def fingerprint(self, ctx: Context, options: Options) -> str:
        """The model and the scored caption; what is embedded follows from the upstream stages."""
        config = options.embed
        return fingerprint(config.model.model_id, config.score_caption)

    def run(self, ctx: Context, options: Options) -> StageResult:
        con, config, on_progress = ctx.con, options.embed, ctx.progress(STAGE)
        q = queries.load(SQL)
        model_id = config.model.model_id
        queries.create_macros(con)
        q["create"].run(con)
        q["add_input_key"].run(con)
        q["create_models"].run(con)
        q["pending"].run(con, model_id=model_id)
        total = q["pending_count"].row(con)["n"]
        encoder = ctx.models.encoder(config.model)
        q["register_model"].run(con, model_id=model_id, name=config.model.name,
                                pretrained=config.model.pretrained, seed=config.model.seed,
                                untrained=config.model.untrained, dim=encoder.dim)
        done = 0
        batches = _on_ray(ctx, options) if options.cluster.executor == "ray" else (
            embed_rows(encoder, pa.Table.from_pylist(page))
            for page in q["next_batch"].pages(con, config.batch, root=str(ctx.paths.root)))
        for table in batches:
            with registered(con, embedding_batch=table):
                q["insert"].run(con, model_id=model_id)
            done += len(table)
            if on_progress:
                on_progress(done, total)
        _embed_scored_caption(ctx, config, encoder)
        with transaction(con):
            q["settings"].run(con, model_id=model_id, score_caption=config.score_caption)
            for name in VIEW_SECTIONS:
                q[name].run(con)
            summary = q["summary"].row(con, model_id=model_id)
        log.info("embed %s: %d new pairs, %d embedded in all", model_id, total,
                 summary["rows_out"])
        return StageResult(summary["rows_in"], summary["rows_out"],
                           info=summary | {"model_id": model_id, **asdict(config)})


def embed_rows(encoder: ImageTextEncoder, rows: pa.Table) -> pa.Table:
    """The mapper on either executor: a batch's image and caption vectors, keyed by pair_id."""
    images = [storage.open_rgb(path, encoder.input_px) for path in rows["path"].to_pylist()]
    return pa.table({
        "pair_id": rows["pair_id"].cast(pa.int64()),
        "image": vector_lists(encoder.images(images)),
        "title": vector_lists(encoder.texts(rows["title"].to_pylist())),
        "title_multi_objects": vector_lists(encoder.texts(rows["title_multi_objects"].to_pylist())),
    })


class RayEmbedder:
    """A Ray Data actor: one model, loaded once, mapping batches with `embed_rows`."""

    def __init__(self, models: Models, spec: ModelSpec):
        self.encoder = models.encoder(spec)

    def __call__(self, rows: pa.Table) -> pa.Table:
        return embed_rows(self.encoder, rows)


def _on_ray(ctx: Context, options: Options) -> Iterator[pa.Table]:
    """The pending pairs (their paths and captions, not their images) go to the cluster in
    partitions of one batch; vectors come back batch by batch as the actors make them."""
    import ray
    from ray.data import ActorPoolStrategy

    cluster.connect(options.cluster.ray_address)
    config, q = options.embed, queries.load(SQL)
    partitions = [pa.Table.from_pylist(page)
                  for page in q["next_batch"].pages(ctx.con, config.batch,
                                                    root=str(ctx.paths.root))]
    if not partitions:
        return
    dataset = ray.data.from_arrow(partitions).map_batches(
        RayEmbedder, fn_constructor_args=(ctx.models, config.model),
        batch_size=config.batch, batch_format="pyarrow",
        compute=ActorPoolStrategy(size=config.actors), num_gpus=config.gpus_per_actor)
    yield from dataset.iter_batches(batch_size=config.batch, batch_format="pyarrow")


def _embed_scored_caption(ctx: Context, config: EmbedConfig, encoder: ImageTextEncoder) -> None:
    """Vectors of the scored caption when it is not one of the paper's two (which every pair
    has already), batch by batch; a changed text is embedded again."""
    con, q, model_id, caption = ctx.con, queries.load(SQL), config.model.model_id, \
        config.score_caption
    with transaction(con):
        captions.create_caption_texts(con)
        q["create_caption_vectors"].run(con)
    q["caption_pending"].run(con, model_id=model_id, caption=caption)
    for batch in q["caption_next_batch"].pages(con, config.batch):
        table = pa.table({"pair_id": pa.array([r["pair_id"] for r in batch], pa.int64()),
                          "vector": vector_lists(encoder.texts([r["text"] for r in batch]))})
        with registered(con, caption_batch=table):
            q["caption_insert"].run(con, model_id=model_id, caption=caption)
