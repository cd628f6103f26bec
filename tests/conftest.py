"""Shared fixtures: the real extracts in ../shared/data/osm and databases built from them."""

from __future__ import annotations

from pathlib import Path

import pytest

import skyscript_db
from skyscript_db.etl.ingest import ingest

OSM_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "osm"
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


@pytest.fixture(scope="session")
def helsinki_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_db(tmp_path_factory, HELSINKI)


@pytest.fixture(scope="session")
def eleven_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_db(tmp_path_factory, ELEVEN)
