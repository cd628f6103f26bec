"""skyscript_db.retrieve(text): the best-matching image-caption pairs, with their metadata.

Text queries are matched against the image index (text -> image); image queries against the
caption index (image -> text) or, with against='image', the image index. `where` is a read-only
SQL predicate over the `pairs` view, applied with the index so that exactly k rows come back when
k pairs match: small candidate sets are searched exactly, large ones through the index with an
id selector (and exactly when that finds fewer than k).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from skyscript_db import queries
from skyscript_db.db import DEFAULT_DB, Paths, connect
from skyscript_db.errors import ConfigError
from skyscript_db.models import ImageTextEncoder, ModelSpec, Models
from skyscript_db.readonly import pairs_query
from skyscript_db.vector_index import SQL, current_model, load_index

EXACT_BELOW = 20_000  # candidate sets this small are scored exactly


def retrieve(text: str, k: int = 10, where: str | None = None, db: str | Path | None = None,
             models: Models = Models()) -> pd.DataFrame:
    """The k pairs whose images best match `text` (cosine similarity, highest first)."""
    return _search(lambda encoder: encoder.texts([text]), "image", k, where, db, models)


def retrieve_by_image(image: Any, k: int = 10, where: str | None = None,
                      db: str | Path | None = None, against: str = "title",
                      models: Models = Models()) -> pd.DataFrame:
    """The k pairs whose captions (against='title') or images (against='image') best match an
    image given as a path or an (H, W, 3) uint8 array."""
    from PIL import Image

    if against not in ("title", "image"):
        raise ConfigError(f"against must be 'title' or 'image', got {against!r}")
    picture = Image.fromarray(np.asarray(image)) if not isinstance(image, (str, Path)) \
        else Image.open(image).convert("RGB")
    return _search(lambda encoder: encoder.images([picture]), against, k, where, db, models)


def _search(encode: Callable[[ImageTextEncoder], np.ndarray], kind: str, k: int,
            where: str | None, db: str | Path | None, models: Models) -> pd.DataFrame:
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    paths = Paths.of(db or DEFAULT_DB)
    candidates_sql = pairs_query(where) if where is not None else None  # checked before DuckDB
    with connect(paths.db, read_only=True) as con:
        _, indexes = load_index(con, paths)
        model = current_model(con)
        query = encode(models.encoder(ModelSpec(model["name"], model["pretrained"],
                                                model["seed"])))
        if candidates_sql is None:
            scores, ids = indexes[kind].search(query, k)
        else:
            scores, ids = _filtered_search(con, indexes[kind], kind, query, k, candidates_sql,
                                           model["model_id"])
        keep = ids[0] >= 0
        results = pa.table({"pair_id": ids[0][keep], "score": scores[0][keep],
                            "rank": np.arange(1, keep.sum() + 1)})
        con.register("retrieve_results", results)
        return queries.load(SQL)["results"].run(con, root=str(paths.root)).df()


def _filtered_search(con, index, kind: str, query: np.ndarray, k: int, candidates_sql: str,
                     model_id: str) -> tuple[np.ndarray, np.ndarray]:
    candidates = con.execute(candidates_sql).fetchnumpy()["pair_id"].astype(np.int64)
    if len(candidates) >= EXACT_BELOW:
        params = _selector_params(index, candidates)
        scores, ids = index.search(query, k, params=params)
        if (ids[0] >= 0).sum() == min(k, len(candidates)):
            return scores, ids
    con.register("retrieve_candidates", pa.table({"pair_id": candidates}))
    rows = queries.load(SQL)["vectors_of"].run(con, model_id=model_id).fetchall()
    if not rows:
        return np.zeros((1, 0), np.float32), np.zeros((1, 0), np.int64)
    column = 1 if kind == "image" else 2
    vectors = np.array([r[column] for r in rows], dtype=np.float32)
    scores = vectors @ query[0]
    order = np.argsort(-scores, kind="stable")[:k]
    ids = np.array([r[0] for r in rows], dtype=np.int64)[order]
    return scores[order][None, :], ids[None, :]


def _selector_params(index, candidates: np.ndarray):
    import faiss

    selector = faiss.IDSelectorBatch(candidates)
    if isinstance(index, faiss.IndexIVF):
        return faiss.SearchParametersIVF(sel=selector, nprobe=index.nprobe)
    return faiss.SearchParameters(sel=selector)
