"""Shared fixtures: a made-up town written inline (needs nothing outside this repository) and
the real extracts in ../shared/data/osm (tests marked `shared`, skipped when it is absent;
SKYSCRIPT_SHARED_DATA points elsewhere)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import skyscript_db
from skyscript_db import queries
from skyscript_db.config import FetchConfig, Options
from skyscript_db.etl import pipeline
from skyscript_db.etl.stage import StageResult
from skyscript_db.models import Models

from fakes import FAKE_MODELS
from osm_inline import town

# The session never reads or fills this user's caches (~/.cache/skyscript-db): its own folder,
# which the tag classifier fitted first fills for every later database.
os.environ["SKYSCRIPT_CACHE"] = tempfile.mkdtemp(prefix="skyscript-test-cache-")

SHARED_DATA = Path(os.environ.get("SKYSCRIPT_SHARED_DATA",
                                  Path(__file__).resolve().parents[2] / "shared" / "data"))
OSM_DIR = SHARED_DATA / "osm"
IMAGERY = SHARED_DATA / "imagery"
HELSINKI = OSM_DIR / "helsinki-center.osm.pbf"
LIECHTENSTEIN = OSM_DIR / "liechtenstein-2015.osm.pbf"
ANDORRA = OSM_DIR / "andorra-2020.osm.pbf"
ELEVEN = OSM_DIR / "eleven-extracts-merged.osm.pbf"
TOWN_CONFIG = skyscript_db.BuildConfig(imagery="render", fraction=1.0, rare_threshold=3,
                                       rare_cap=10)
QUICK_FETCH = FetchConfig(workers=2, processes=False)
CATALOG = skyscript_db.BuildConfig(imagery="catalog")  # the Earth Engine collections: no fetch
RENDER_SMALL = skyscript_db.BuildConfig(imagery="render", n_cells=1, rare_threshold=3,
                                        rare_cap=10)


# Fixtures built from ../shared/data: a test using one is marked `shared`.
SHARED_FIXTURES = {"helsinki_built", "eleven_built", "render_db", "embedded_db", "helsinki_db",
                   "eleven_db", "exported"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests on shared fixtures `shared`; skip `shared` tests without ../shared/data and
    `gpu` tests without CUDA."""
    no_shared = pytest.mark.skip(reason=f"{SHARED_DATA} is missing: the shared test data is not "
                                        "beside this checkout")
    has_gpu = None
    for item in items:
        if SHARED_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.shared)
        if "shared" in item.keywords and not SHARED_DATA.is_dir():
            item.add_marker(no_shared)
        if "gpu" in item.keywords:
            if has_gpu is None:
                import torch

                has_gpu = torch.cuda.is_available()
            if not has_gpu:
                item.add_marker(pytest.mark.skip(reason="no CUDA device"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    """Until a server the test started listens on 127.0.0.1:`port`; its early exit fails."""
    deadline = time.time() + timeout
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.time() > deadline or process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} is not listening on port {port}")
        time.sleep(0.1)


def shared_extract(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is missing: the shared test data (../shared/data) is not beside "
                    "this checkout")
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
    """`pbf` ingested only."""
    db = tmp_path_factory.mktemp("db") / f"{pbf.stem}.duckdb"
    skyscript_db.build(shared_extract(pbf), db, only="ingest")
    if tag_cache:
        copy_tag_cache(tag_cache, db)
    return db


def build_all(tmp_path_factory: pytest.TempPathFactory, pbf: Path,
              config: skyscript_db.BuildConfig = CATALOG,
              tag_cache: Path | None = None) -> Path:
    db = tmp_path_factory.mktemp("built") / f"{pbf.stem}.duckdb"
    if tag_cache:
        copy_tag_cache(tag_cache, db)
    skyscript_db.build(shared_extract(pbf), db, config)
    return db


@pytest.fixture(scope="session")
def town_pbf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return town(tmp_path_factory.mktemp("town") / "town.osm.pbf")


@pytest.fixture(scope="session")
def town_built(tmp_path_factory: pytest.TempPathFactory, town_pbf: Path) -> Path:
    """Every stage, fetch, embed and index included, on the inline town: SYNTHETIC images, fake
    encoders (tests/fakes.py). Tests that change it work on a copy."""
    db = tmp_path_factory.mktemp("town_built") / "town.duckdb"
    skyscript_db.build(town_pbf, db, TOWN_CONFIG, fetch=QUICK_FETCH, embed=True,
                       models=FAKE_MODELS)
    return db


@pytest.fixture(scope="session")
def town_requests(tmp_path_factory: pytest.TempPathFactory, town_pbf: Path,
                  town_built: Path) -> Path:
    """The inline town through captions only: image requests, nothing fetched yet."""
    db = tmp_path_factory.mktemp("town_requests") / "town.duckdb"
    copy_tag_cache(town_built, db)
    skyscript_db.build(town_pbf, db, TOWN_CONFIG, models=FAKE_MODELS)
    return db


def copy_db(db: Path, folder: Path) -> Path:
    """A copy of a database with its image and index folders."""
    target = folder / db.name
    shutil.copy(db, target)
    for suffix in ("_images", "_index"):
        if (db.parent / f"{db.stem}{suffix}").exists():
            shutil.copytree(db.parent / f"{db.stem}{suffix}", folder / f"{db.stem}{suffix}")
    return target


@pytest.fixture(scope="session")
def helsinki_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every stage on central Helsinki, default config; it trains the session's tag classifier,
    which the other databases start from (copy_tag_cache)."""
    return build_all(tmp_path_factory, HELSINKI)


@pytest.fixture(scope="session")
def eleven_built(tmp_path_factory: pytest.TempPathFactory, helsinki_built: Path) -> Path:
    """Every stage on the eleven extracts (several countries, so several collections)."""
    return build_all(tmp_path_factory, ELEVEN, skyscript_db.BuildConfig(fraction=0.3, imagery="catalog"),
                     tag_cache=helsinki_built)


@pytest.fixture(scope="session")
def render_db(tmp_path_factory: pytest.TempPathFactory, helsinki_built: Path) -> Path:
    """Helsinki, every stage, a small selection, SYNTHETIC render collections; nothing fetched.
    Tests that change it work on a copy."""
    return build_all(tmp_path_factory, HELSINKI, RENDER_SMALL, tag_cache=helsinki_built)


@pytest.fixture(scope="session")
def embedded_db(tmp_path_factory: pytest.TempPathFactory, render_db: Path) -> Path:
    """The render database with its images fetched, embedded with the real (tiny, untrained)
    open_clip model, indexed."""
    db = tmp_path_factory.mktemp("embedded") / "embedded.duckdb"
    shutil.copy(render_db, db)
    skyscript_db.build(HELSINKI, db, RENDER_SMALL, fetch=QUICK_FETCH, embed=True)
    return db


@pytest.fixture(scope="session")
def helsinki_db(tmp_path_factory: pytest.TempPathFactory, helsinki_built: Path) -> Path:
    """Central Helsinki ingested, with the session's tag cache: copies of it build quickly."""
    return build_db(tmp_path_factory, HELSINKI, tag_cache=helsinki_built)


@pytest.fixture(scope="session")
def eleven_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_db(tmp_path_factory, ELEVEN)


def run_stage(db: Path, name: str, options: Options = Options(),
              models: Models = Models()) -> StageResult:
    """Run one stage on `db` whatever its fingerprint (as its CLI command does)."""
    return pipeline.run(db, options, [name], only=name, models=models)[name]
