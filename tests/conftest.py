"""Shared fixtures: the real extracts in ../shared/data/osm and databases built from them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import skyscript_db
from skyscript_db import queries
from skyscript_db.etl.embeddings import embed
from skyscript_db.etl.fetch import FetchConfig, fetch_images
from skyscript_db.etl.index import build_index
from skyscript_db.etl.ingest import ingest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OSM_DIR = SHARED_DATA / "osm"
IMAGERY = SHARED_DATA / "imagery"
HELSINKI = OSM_DIR / "helsinki-center.osm.pbf"
LIECHTENSTEIN = OSM_DIR / "liechtenstein-2015.osm.pbf"
ANDORRA = OSM_DIR / "andorra-2020.osm.pbf"
ELEVEN = OSM_DIR / "eleven-extracts-merged.osm.pbf"


def shared_extract(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is missing: the shared test data (../shared/data) is not beside this checkout")
    return path


def copy_tag_cache(source: Path, db: Path) -> None:
    """Give `db` the tag text embeddings and tag models of `source`, so that building it embeds
    only texts `source` lacks and trains no classifier (the same labels and encoder give the same
    model id). Tests that build many databases start from a warm cache this way."""
    q = queries.load("20_tag_visibility.sql")
    with skyscript_db.connect(db) as con:
        q["create_cache"].run(con)
        q["create_models"].run(con)
        con.execute(f"attach '{source}' as source (read_only)")  # ATTACH takes no parameters
        for table in ("tag_text_embeddings", "tag_models"):
            con.execute(f"insert or ignore into {table} select * from source.{table}")
        con.execute("detach source")


def build_db(tmp_path_factory: pytest.TempPathFactory, pbf: Path,
             tag_cache: Path | None = None) -> Path:
    db = tmp_path_factory.mktemp("db") / f"{pbf.stem}.duckdb"
    with skyscript_db.connect(db) as con:
        ingest(con, shared_extract(pbf))
    if tag_cache:
        copy_tag_cache(tag_cache, db)
    return db


def build_all(tmp_path_factory: pytest.TempPathFactory, pbf: Path,
              config: skyscript_db.BuildConfig = skyscript_db.BuildConfig(),
              tag_cache: Path | None = None) -> Path:
    db = tmp_path_factory.mktemp("built") / f"{pbf.stem}.duckdb"
    if tag_cache:
        copy_tag_cache(tag_cache, db)
    skyscript_db.build(shared_extract(pbf), db, config)
    return db


@pytest.fixture(scope="session")
def helsinki_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every stage on central Helsinki, default config; it trains the session's tag classifier,
    which the other databases start from (copy_tag_cache)."""
    return build_all(tmp_path_factory, HELSINKI)


@pytest.fixture(scope="session")
def eleven_built(tmp_path_factory: pytest.TempPathFactory, helsinki_built: Path) -> Path:
    """Every stage on the eleven extracts (several countries, so several collections)."""
    return build_all(tmp_path_factory, ELEVEN, skyscript_db.BuildConfig(fraction=0.3),
                     tag_cache=helsinki_built)


@pytest.fixture(scope="session")
def render_db(tmp_path_factory: pytest.TempPathFactory, helsinki_built: Path) -> Path:
    """Helsinki, every stage, a small selection, SYNTHETIC render collections; nothing fetched.
    Tests that change it work on a copy."""
    config = skyscript_db.BuildConfig(imagery="render", n_cells=1, rare_threshold=3, rare_cap=10)
    return build_all(tmp_path_factory, HELSINKI, config, tag_cache=helsinki_built)


@pytest.fixture(scope="session")
def embedded_db(tmp_path_factory: pytest.TempPathFactory, render_db: Path) -> Path:
    """The render database with its images fetched, embedded with the tiny model, indexed."""
    db = tmp_path_factory.mktemp("embedded") / "embedded.duckdb"
    shutil.copy(render_db, db)
    with skyscript_db.connect(db) as con:
        fetch_images(con, db, FetchConfig(workers=2, processes=False))
        embed(con, db)
        build_index(con, db)
    return db


@pytest.fixture(scope="session")
def helsinki_db(tmp_path_factory: pytest.TempPathFactory, helsinki_built: Path) -> Path:
    """Central Helsinki ingested, with the session's tag cache: copies of it build quickly."""
    return build_db(tmp_path_factory, HELSINKI, tag_cache=helsinki_built)


@pytest.fixture(scope="session")
def eleven_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_db(tmp_path_factory, ELEVEN)
