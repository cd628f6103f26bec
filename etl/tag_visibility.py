"""Stage tag_visibility: labels, rules and the tag classifier decide every tag of tag_stats.

The rules live in sql/20_tag_visibility.sql; this module moves the bytes between it and the
models: it embeds the texts the cache lacks (committed batch by batch, so an interrupted run
resumes), trains the classifier when no model for these labels and this encoder is
stored (`tag_models`), and hands the predictions to the SQL that writes `tag_visibility` in one
transaction.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from skyscript_db import queries
from skyscript_db.config import Options
from skyscript_db.db import registered
from skyscript_db.errors import LabelError
from skyscript_db.etl import tag_cache
from skyscript_db.etl import tag_classifier as classifier
from skyscript_db.etl.stage import (Context, ProgressCallback, StageResult, fingerprint,
                                    transaction)
from skyscript_db.models import TextEncoder, vector_lists

log = logging.getLogger(__name__)

STAGE = "tag_visibility"
SQL = "20_tag_visibility.sql"
SEED_FILES = {"rules_csv": "tag_visibility_rules.csv", "labels_csv": "tag_labels.csv"}
# What the facts beside the text vectors are made of (section tag_facts).
FACT_FILES = {"geometry_csv": "tag_geometry.csv", "presets_csv": "id_presets/presets.csv",
              "preset_tags_csv": "id_presets/preset_tags.csv",
              "fields_csv": "id_presets/fields.csv",
              "options_parquet": "id_presets/field_options.parquet"}
EMBED_BATCH = 1024
# The classifier is a model of the labels, not a draw of the build: its CV folds take this fixed
# seed, so another build seed reshuffles the sample but keeps every tag's verdict.
CV_SEED = 0


@dataclass(frozen=True)
class TagVisibilityStage:
    """Not one transaction: text vectors are cached batch by batch (an interrupted run resumes);
    the verdicts are written in one transaction at the end."""

    name: str = STAGE
    upstream: tuple[str, ...] = ("tag_stats",)
    transactional: bool = False

    def fingerprint(self, ctx: Context, options: Options) -> str:
        texts = [queries.sql_text(SQL), queries.sql_text("macros.sql")]
        seeds = [queries.seed_digest(file) for file in (SEED_FILES | FACT_FILES).values()]
        encoder = ctx.models.text_encoder(options.build.tag_encoder)
        return fingerprint(texts, seeds, encoder.encoder_id)

    def run(self, ctx: Context, options: Options) -> StageResult:
        """Write tag_visibility: label, else rule, else the model (trained first if needed)."""
        started = time.time()
        q = queries.load(SQL)
        encoder = ctx.models.text_encoder(options.build.tag_encoder)
        use_cache = options.build.tag_cache
        embedded = prepare(ctx.con, encoder, ctx.progress(STAGE), use_cache)
        embedded_at = time.time()
        # without the user cache, a fit is forced
        model_id, model = stored_or_trained(ctx.con, encoder.encoder_id, retrain=not use_cache)
        trained_at = time.time()
        predictions = _predictions(ctx.con, encoder.encoder_id, model)
        timings = {"texts_embedded": embedded, "embed_s": round(embedded_at - started, 2),
                   "model_s": round(trained_at - embedded_at, 2), "model_id": model_id}
        with transaction(ctx.con) as con:
            q["keep_labels"].run(con)
            q["keep_rules"].run(con)
            with registered(con, tag_predictions=predictions):
                q["tag_visibility"].run(con, model_id=model_id)
            summary = q["summary"].row(con)
        log.info("%s: %s", STAGE, ", ".join(f"{k} {v:,}" for k, v in summary.items()))
        return StageResult(summary["rows_in"], summary["rows_out"], info=summary | timings)


def train(con: duckdb.DuckDBPyConnection, encoder: TextEncoder) -> tuple[str, dict[str, Any]]:
    """Train (again) on the labelled set and store the model; returns its id and CV report."""
    prepare(con, encoder)
    model_id, model = stored_or_trained(con, encoder.encoder_id, retrain=True)
    return model_id, model.report


def latest_report(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """The newest stored model's id, encoder, label count and CV report (tag_models exists)."""
    row = queries.load(SQL)["latest_model"].row(con)
    return row | {"report": json.loads(row["report"])} if row else None


def prepare(con: duckdb.DuckDBPyConnection, encoder: TextEncoder,
            on_progress: ProgressCallback | None = None, use_cache: bool = True) -> int:
    """Load the seeds into temp tables, find the tags that need features and embed the texts
    that neither the database nor the user cache has (the encoder's weights load only then);
    returns how many were embedded."""
    q = queries.load(SQL)
    queries.create_macros(con)
    for name in ("load_rules", "load_labels"):
        q[name].run(con, **{p: queries.seed_path(SEED_FILES[p]) for p in q[name].params})
    bad = q["check_labels"].dicts(con)
    if bad:
        raise LabelError(f"{SEED_FILES['labels_csv']}: labels must be visible true/false, a "
                         f"visible tag's max_gsd_m one of {classifier.GSD_CLASSES}, an "
                         f"invisible one's empty, each tag once; these are not: {bad}")
    for name in ("rule_hits", "tag_texts", "create_cache"):
        q[name].run(con)
    make_facts(con)
    cache_id = encoder.encoder_id
    if use_cache:
        tag_cache.run(con, "cache_pull_texts", encoder_id=cache_id)
    pending = [r[0] for r in q["pending_texts"].run(con, encoder_id=cache_id).fetchall()]
    log.info("%s: %d new texts to embed with %s", STAGE, len(pending), cache_id)
    if not pending:
        return 0
    for start in range(0, len(pending), EMBED_BATCH):
        texts = pending[start:start + EMBED_BATCH]
        batch = pa.table({"text": texts, "embedding": vector_lists(encoder.encode(texts))})
        with registered(con, text_embedding_batch=batch):
            q["insert_embeddings"].run(con, encoder_id=cache_id)
        if on_progress:
            on_progress(start + len(texts), len(pending))
    if use_cache:
        tag_cache.run(con, "cache_push_texts", encoder_id=cache_id)
    return len(pending)


def make_facts(con: duckdb.DuckDBPyConnection) -> None:
    """Table tag_facts for the tags of tag_texts (needs tag_stats)."""
    queries.load(SQL)["check_stats"].run(con)
    queries.load(SQL)["tag_facts"].run(
        con, **{param: queries.seed_path(file) for param, file in FACT_FILES.items()})


def stored_or_trained(con: duckdb.DuckDBPyConnection, encoder_id: str,
                      retrain: bool = False) -> tuple[str, classifier.TagModel]:
    """The model for these labels and this encoder: from tag_models or the user cache, or
    trained and stored in both."""
    q = queries.load(SQL)
    q["create_models"].run(con)
    labels_sha256 = queries.seed_digest(SEED_FILES["labels_csv"])
    facts = [queries.sql_text(SQL)] + [queries.seed_digest(f) for f in FACT_FILES.values()]
    model_id = "tags-" + fingerprint(encoder_id, labels_sha256, facts, CV_SEED,
                                     classifier.SKLEARN_VERSION, classifier.PCA_SIZES,
                                     classifier.C_VALUES, classifier.CLASS_WEIGHTS,
                                     classifier.FACT_WEIGHTS, classifier.FOLDS)[:12]
    if not retrain:
        tag_cache.run(con, "cache_pull_model", model_id=model_id)
    stored = q["find_model"].row(con, model_id=model_id)
    if stored and not retrain:
        try:
            return model_id, classifier.TagModel.from_bytes(stored["model"])
        except (ImportError, AttributeError) as e:  # pickled by a release with another layout
            log.warning("%s: stored model %s cannot be loaded (%s); training it again", STAGE,
                        model_id, e)
    rows = _features(con, encoder_id, labelled=True)
    visible = rows["visible"].to_numpy(zero_copy_only=False)
    x, vector_width = _matrix(rows)
    gsd = np.array([classifier.gsd_class(g) for g in rows["max_gsd_m"].to_numpy()[visible]])
    log.info("%s: training on %d labels (%d visible) with %s", STAGE, len(rows), len(gsd),
             encoder_id)
    model = classifier.train(x, visible, x[visible], gsd, vector_width, CV_SEED)
    model.report |= {"model_id": model_id, "encoder_id": encoder_id}
    blob = model.to_bytes()
    q["save_model"].run(con, model_id=model_id, encoder_id=encoder_id,
                        labels_sha256=labels_sha256, n_labels=rows.num_rows,
                        package_version=version("skyscript-db"),
                        sklearn_version=classifier.SKLEARN_VERSION, model=blob,
                        report=json.dumps(model.report))
    tag_cache.run(con, "cache_push_model", model_id=model_id)
    _log_report(model.report)
    # Predict with the stored copy, as every later run will: the fitted object in memory can
    # differ from it in the last bits of a probability (array layout changes BLAS's sums).
    return model_id, classifier.TagModel.from_bytes(blob)


def _predictions(con: duckdb.DuckDBPyConnection, encoder_id: str,
                 model: classifier.TagModel) -> pa.Table:
    rows = _features(con, encoder_id, labelled=False)  # never empty: labels are among them
    out = model.predict(_matrix(rows)[0])
    columns = {
        "key": rows["key"],
        "value": rows["value"],
        "visible": np.asarray(out["visible"], bool),
        "p_visible": np.asarray(out["p_visible"], float),
        "max_gsd_m": np.asarray(out["max_gsd_m"], float),
    }
    for i, gsd in enumerate(classifier.GSD_CLASSES):
        columns[f"p_gsd_{gsd:g}".replace(".", "_")] = out["gsd_proba"][:, i]
    return pa.table(columns)


def _features(con: duckdb.DuckDBPyConnection, encoder_id: str, labelled: bool) -> pa.Table:
    query = queries.load(SQL)["features"]
    return query.run(con, encoder_id=encoder_id, labelled=labelled).to_arrow_table()


def _matrix(rows: pa.Table) -> tuple[np.ndarray, int]:
    """The classifier's features of each row (its two vector columns, then its facts) and how
    many of their columns are vectors."""
    tag, key, facts = (rows[c].combine_chunks().flatten().to_numpy().reshape(rows.num_rows, -1)
                       for c in ("tag_vector", "key_vector", "facts"))
    return classifier.features(tag, key, facts), tag.shape[1] + key.shape[1]


def _log_report(report: dict[str, Any]) -> None:
    for stage in ("visible", "gsd"):
        r = report[stage]
        log.info("tag classifier %s: %d labels, CV accuracy %.3f, macro-F1 %.3f, %s", stage,
                 r["n"], r["accuracy"], r["macro_f1"], r["params"])
