"""The FAISS index folder as readers see it: its manifest, and whether it was built from the
embeddings the database holds now. The index stage (etl/index.py) writes it; `retrieve` reads it
and refuses a stale one, never rebuilding it behind the user's back.

`<db stem>_index/manifest.json` names the model, the checksum of the vectors the indexes were
built from, and per kind (`image`, `title`) the FAISS file, its type and nprobe.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb

from skyscript_db import queries
from skyscript_db.db import Paths, has_table
from skyscript_db.errors import DatabaseError

KINDS = ("image", "title")
MANIFEST = "manifest.json"
SQL = "90_embeddings.sql"


def current_model(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The model the pairs view scores: model_id, name, pretrained, seed."""
    if not has_table(con, "pair_settings"):
        raise DatabaseError("no embeddings yet: run `skyscript-db build --fetch --embed` "
                            "(or `skyscript-db embed`, then `skyscript-db index`)")
    return queries.load(SQL)["current_model"].row(con)


def checksum(con: duckdb.DuckDBPyConnection, model_id: str) -> str:
    """Identifies a model's vectors: count and an order-free hash of ids and vectors."""
    row = queries.load(SQL)["checksum"].row(con, model_id=model_id)
    return f"{row['n']}:{row['digest']}"


def read_manifest(paths: Paths) -> dict[str, Any] | None:
    path = paths.index / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None


def load_index(con: duckdb.DuckDBPyConnection, paths: Paths) -> tuple[dict[str, Any], dict]:
    """The manifest and the FAISS indexes by kind; a missing or stale index is an error."""
    import faiss

    model_id = current_model(con)["model_id"]
    manifest = read_manifest(paths)
    if manifest is None or manifest["model_id"] != model_id \
            or manifest["checksum"] != checksum(con, model_id):
        state = "missing" if manifest is None else "stale (built from other embeddings)"
        raise DatabaseError(f"{paths.index}: the index of {model_id} is {state}; rebuild it with "
                            f"`skyscript-db build --embed --db {paths.db}` or "
                            f"`skyscript-db index --db {paths.db}`")
    indexes = {}
    for kind, meta in manifest["indexes"].items():
        index = faiss.read_index(str(paths.index / meta["file"]))
        if meta["nprobe"]:
            index.nprobe = meta["nprobe"]
        indexes[kind] = index
    return manifest, indexes
