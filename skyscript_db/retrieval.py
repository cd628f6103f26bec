"""skyscript_db.retrieve(text): the best-matching image-caption pairs, with their metadata.

Text queries are matched against the image index (text -> image); image queries against the
caption index (image -> text) or, with against='image', the image index. `where` is a read-only
SQL predicate over the `pairs` view, applied with the index so that exactly k rows come back when
k pairs match: small candidate sets are searched exactly, large ones through the index with an
id selector (and exactly when that finds fewer than k).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from skyscript_db import queries
from skyscript_db.db import DEFAULT_DB, Paths, connect
from skyscript_db.errors import ConfigError
from skyscript_db.models import ModelSpec, Models
from skyscript_db.readonly import pairs_query
from skyscript_db.vector_index import SQL, current_model, load_index

EXACT_BELOW = 20_000  # candidate sets this small are scored exactly


def retrieve(text: str, k: int = 10, where: str | None = None, db: str | Path | None = None,
             models: Models = Models()) -> pd.DataFrame:
    """The k pairs whose images best match `text` (cosine similarity, highest first)."""
    _check(k, where)
    with Searcher.open(db, models) as searcher:
        return searcher.search(searcher.text_vector(text), "image", k, where).df()


def retrieve_by_image(image: Any, k: int = 10, where: str | None = None,
                      db: str | Path | None = None, against: str = "title",
                      models: Models = Models()) -> pd.DataFrame:
    """The k pairs whose captions (against='title') or images (against='image') best match an
    image given as a path or an (H, W, 3) uint8 array."""
    _check(k, where)
    with Searcher.open(db, models) as searcher:
        return searcher.search(searcher.image_vector(image), against, k, where).df()


def _check(k: int, where: str | None) -> None:
    """Bad arguments fail before the database, the index and the model are opened."""
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    if where is not None:
        pairs_query(where)


class Searcher:
    """A database with its index and encoder loaded once, for many searches (the web server
    keeps one). Encoding touches only the model; `search` uses the connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, paths: Paths, models: Models = Models()):
        self.con, self.paths = con, paths
        self.manifest, self.indexes = load_index(con, paths)
        self.model = current_model(con)
        self.encoder = models.encoder(ModelSpec(self.model["name"], self.model["pretrained"],
                                                self.model["seed"]))

    @classmethod
    @contextmanager
    def open(cls, db: str | Path | None, models: Models = Models()) -> Iterator[Searcher]:
        paths = Paths.of(db or DEFAULT_DB)
        with connect(paths.db, read_only=True) as con:
            yield cls(con, paths, models)

    def text_vector(self, text: str) -> np.ndarray:
        return self.encoder.texts([text])

    def image_vector(self, image: Any) -> np.ndarray:
        """`image`: a path, a PIL image or an (H, W, 3) uint8 array."""
        from PIL import Image

        if isinstance(image, (str, Path)):
            image = Image.open(image)
        elif not isinstance(image, Image.Image):
            image = Image.fromarray(np.asarray(image))
        return self.encoder.images([image.convert("RGB")])

    def nearest(self, query: np.ndarray, kind: str, k: int,
                where: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ids and scores of the k best pairs for a query vector against the `kind` index
        ('image' or 'title'), best first."""
        if kind not in self.indexes:
            raise ConfigError(f"against must be one of {sorted(self.indexes)}, got {kind!r}")
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        index = self.indexes[kind]
        if where is None:
            scores, ids = index.search(query, k)
        else:
            scores, ids = _filtered_search(self.con, index, kind, query, k, pairs_query(where),
                                           self.model["model_id"])
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def search(self, query: np.ndarray, kind: str, k: int,
               where: str | None = None) -> duckdb.DuckDBPyConnection:
        """`nearest`, as a cursor over rank, score and the pairs view's columns (image_path
        absolute)."""
        ids, scores = self.nearest(query, kind, k, where)
        results = pa.table({"pair_id": ids, "score": scores, "rank": np.arange(1, len(ids) + 1)})
        self.con.register("retrieve_results", results)
        queries.create_macros(self.con)
        return queries.load(SQL)["results"].run(self.con, root=str(self.paths.root))


def _filtered_search(con, index, kind: str, query: np.ndarray, k: int, candidates_sql: str,
                     model_id: str) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    candidates = con.execute(candidates_sql).fetchnumpy()["pair_id"].astype(np.int64)
    # An IVF index may miss candidates in lists it does not probe; a flat one never does.
    approximate = isinstance(faiss.downcast_index(getattr(index, "index", index)),
                             faiss.IndexIVF)
    if len(candidates) >= EXACT_BELOW or not approximate:
        params = _selector_params(index, candidates)
        scores, ids = index.search(query, k, params=params)
        if (ids[0] >= 0).sum() == min(k, len(candidates)):
            return scores, ids
    con.register("retrieve_candidates", pa.table({"pair_id": candidates}))
    rows = queries.load(SQL)["vectors_of"].run(con, model_id=model_id).fetch_arrow_table()
    if rows.num_rows == 0:
        return np.zeros((1, 0), np.float32), np.zeros((1, 0), np.int64)
    vectors = rows.column(kind).combine_chunks().flatten().to_numpy().reshape(rows.num_rows, -1)
    scores = vectors @ query[0]
    order = np.argsort(-scores, kind="stable")[:k]
    ids = rows.column("pair_id").to_numpy()[order]
    return scores[order][None, :], ids[None, :]


def _selector_params(index, candidates: np.ndarray):
    import faiss

    selector = faiss.IDSelectorBatch(candidates)
    if isinstance(index, faiss.IndexIVF):
        return faiss.SearchParametersIVF(sel=selector, nprobe=index.nprobe)
    return faiss.SearchParameters(sel=selector)
