"""Embeddings, the FAISS index and retrieve(): on a small real build with the tiny seeded model."""

from __future__ import annotations

import json
import shutil

import faiss
import numpy as np
import pytest
from typer.testing import CliRunner

import skyscript_db
from skyscript_db.cli import app
from skyscript_db.config import IndexConfig
from skyscript_db.db import Paths
from skyscript_db.errors import DatabaseError, ReadOnlyViolation
from skyscript_db.etl.index import make_index, recall
from skyscript_db.retrieval import retrieve, retrieve_by_image

from conftest import HELSINKI, RENDER_SMALL


def one(db, query):
    with skyscript_db.connect(db, read_only=True) as con:
        return con.execute(query).fetchone()


def test_embeddings_are_unit_vectors_of_every_fetched_pair(embedded_db):
    n_images, n_embedded, worst = one(embedded_db, """
        select (select count(*) from images where status = 'ok'), count(*),
               max(abs(list_inner_product(image, image) - 1)) from embeddings""")
    untrained, dim = one(embedded_db, "select untrained, dim from embedding_models")
    assert n_images == n_embedded > 50 and worst < 1e-5 and untrained and dim == 64


def test_pairs_view_ranks_by_similarity(embedded_db):
    best, top20, total = one(embedded_db, """
        select (select similarity_rank_pct from pairs order by similarity desc limit 1),
               (select count(*) from pairs_top20), (select count(*) from pairs)""")
    assert best == 0 and 0.15 * total <= top20 <= 0.25 * total


def test_an_images_own_embedding_retrieves_it_first(embedded_db):
    path, pair_id = one(embedded_db, "select path, pair_id from images order by pair_id limit 1")
    found = retrieve_by_image(embedded_db.parent / path, k=3, db=embedded_db, against="image")
    assert found["pair_id"][0] == pair_id and found["score"][0] == pytest.approx(1, abs=1e-4)


def test_text_retrieval_returns_k_ranked_rows_with_files(embedded_db):
    found = retrieve("road of footway", k=7, db=embedded_db)
    assert len(found) == 7 and list(found["rank"]) == list(range(1, 8))
    assert list(found["score"]) == sorted(found["score"], reverse=True)
    assert all(__import__("os").path.exists(p) for p in found["image_path"])
    assert {"title", "title_multi_objects", "tags", "west", "north", "collection_code"} <= set(found)


def test_where_filters_are_exact_and_k_larger_than_matches_returns_all(embedded_db):
    code = one(embedded_db, "select collection_code from pairs group by 1 order by count(*) limit 1")[0]
    n_code = one(embedded_db, f"select count(*) from pairs where collection_code = '{code}'")[0]
    found = retrieve("building", k=n_code + 5, where=f"collection_code = '{code}'", db=embedded_db)
    assert len(found) == n_code and set(found["collection_code"]) == {code}
    some = retrieve("building", k=3, where="kind = 'polygon'", db=embedded_db)
    assert len(some) == 3 and set(some["kind"]) == {"polygon"}
    with pytest.raises(ReadOnlyViolation):
        retrieve("x", where="1 = 1) union select 1; drop table images; --", db=embedded_db)


def test_stale_index_is_refused_then_rebuilt_by_build(embedded_db, tmp_path):
    db = tmp_path / "stale.duckdb"
    shutil.copy(embedded_db, db)
    shutil.copytree(Paths.of(embedded_db).index, Paths.of(db).index)
    shutil.copytree(Paths.of(embedded_db).images, Paths.of(db).images)
    with skyscript_db.connect(db) as con:
        gone = con.execute("delete from embeddings where pair_id = (select min(pair_id) "
                           "from embeddings) returning pair_id").fetchone()[0]
    before = json.loads((Paths.of(db).index / "manifest.json").read_text())
    with pytest.raises(DatabaseError, match="stale"):
        retrieve("road", k=1000, db=db)
    assert skyscript_db.build(HELSINKI, db, RENDER_SMALL, embed=True) == ["index"]
    after = json.loads((Paths.of(db).index / "manifest.json").read_text())
    found = retrieve("road", k=1000, db=db)
    assert after["checksum"] != before["checksum"] and after["n"] == before["n"] - 1
    assert gone not in set(found["pair_id"])


def test_clear_errors_without_embeddings(helsinki_db, tmp_path):
    db = tmp_path / "plain.duckdb"
    shutil.copy(helsinki_db, db)
    with pytest.raises(DatabaseError, match="skyscript-db embed"):
        retrieve("anything", db=db)
    result = CliRunner().invoke(app, ["retrieve", "anything", "--db", str(db)])
    assert result.exit_code == 1 and "skyscript-db embed" in result.output


def test_approximate_index_agrees_with_exact_search():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(200, 32)).astype(np.float32)
    vectors = centres[rng.integers(0, 200, 20_000)] + 0.3 * rng.normal(size=(20_000, 32))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    ids = np.arange(20_000, dtype=np.int64) * 4 + 1
    index, nprobe = make_index(vectors, ids, IndexConfig(exact_below=1000, target_recall=0.95))
    assert isinstance(index, faiss.IndexIVFFlat) and 1 <= nprobe < index.nlist
    exact = faiss.IndexIDMap2(faiss.IndexFlatIP(32))
    exact.add_with_ids(vectors, ids)
    queries = vectors[rng.choice(20_000, 300, replace=False)] + 0.05 * rng.normal(size=(300, 32))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    _, found = index.search(queries, 10)
    _, truth = exact.search(queries, 10)
    assert recall(found, truth) >= 0.95  # the tuner's target holds for held-out queries


def test_cli_build_fetch_embed_then_retrieve(tmp_path, helsinki_db):
    """The path of `make build-db`: every stage, images, embeddings, index, then retrieve."""
    db = tmp_path / "cli.duckdb"
    shutil.copy(helsinki_db, db)
    runner = CliRunner()
    built = runner.invoke(app, ["build", str(HELSINKI), "--db", str(db), "--imagery", "render",
                                "--cells", "1", "--rare-cap", "5", "--fetch", "--embed"])
    assert built.exit_code == 0, built.output
    found = retrieve("natural water", k=5, db=db)
    assert len(found) == 5 and all(__import__("os").path.exists(p) for p in found["image_path"])
    shown = runner.invoke(app, ["retrieve", "natural water", "-k", "3", "--db", str(db)])
    assert shown.exit_code == 0 and "SYNTH_" in shown.output
