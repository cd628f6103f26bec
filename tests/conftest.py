"""Shared fixtures: the real extracts in ../shared/data/osm and databases built from them."""

from __future__ import annotations

from pathlib import Path

import pytest

import skyscript_db
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


def build_db(tmp_path_factory: pytest.TempPathFactory, pbf: Path) -> Path:
    db = tmp_path_factory.mktemp("db") / f"{pbf.stem}.duckdb"
    with skyscript_db.connect(db) as con:
        ingest(con, shared_extract(pbf))
    return db


def build_all(tmp_path_factory: pytest.TempPathFactory, pbf: Path,
              config: skyscript_db.BuildConfig = skyscript_db.BuildConfig()) -> Path:
    db = tmp_path_factory.mktemp("built") / f"{pbf.stem}.duckdb"
    skyscript_db.build(shared_extract(pbf), db, config)
    return db


@pytest.fixture(scope="session")
def helsinki_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every stage on central Helsinki, default config."""
    return build_all(tmp_path_factory, HELSINKI)


@pytest.fixture(scope="session")
def eleven_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every stage on the eleven extracts (several countries, so several collections)."""
    return build_all(tmp_path_factory, ELEVEN, skyscript_db.BuildConfig(fraction=0.3))


@pytest.fixture(scope="session")
def render_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Helsinki, every stage, a small selection, SYNTHETIC render collections; nothing fetched.
    Tests that change it work on a copy."""
    config = skyscript_db.BuildConfig(imagery="render", n_cells=1, rare_threshold=3, rare_cap=10)
    return build_all(tmp_path_factory, HELSINKI, config)


@pytest.fixture(scope="session")
def helsinki_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_db(tmp_path_factory, HELSINKI)


@pytest.fixture(scope="session")
def eleven_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_db(tmp_path_factory, ELEVEN)
