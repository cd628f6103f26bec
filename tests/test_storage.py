"""Images and exports on object storage: an S3-compatible server (moto) on 127.0.0.1. Fetch
writes to s3://, embed, retrieve and export read from it, export writes there; the bytes are the
ones the local build writes."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

import skyscript_db
from skyscript_db import storage
from skyscript_db.config import ExportConfig, FetchConfig, Options
from skyscript_db.db import Paths
from skyscript_db.errors import ConfigError

from conftest import copy_db, free_port, run_stage, wait_for_port
from fakes import FAKE_MODELS

pytest.importorskip("s3fs")


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory):
    """moto's S3 server on a free port, with a bucket; s3fs finds it through the standard AWS
    environment variables, as a user's would find their own endpoint."""
    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H",
                               "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        wait_for_port(port, server)
        fs, _ = storage.filesystem("s3://skyscript")
        fs.mkdir("skyscript")
        yield fs
    finally:
        server.kill()
        server.wait()
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.update({key: value})


def rows(db: Path, query: str) -> list[tuple]:
    with skyscript_db.connect(db, read_only=True) as con:
        return con.execute(query).fetchall()


def test_fetch_embed_retrieve_and_export_through_s3(s3, town_built, town_requests, tmp_path):
    url = "s3://skyscript/images"
    db = copy_db(town_requests, tmp_path)
    fetch = Options(fetch=FetchConfig(workers=2, images_url=url))
    fetched = run_stage(db, "fetch_images", fetch)
    on_s3 = rows(db, "select pair_id, path, status, bytes from images order by pair_id")
    local = rows(town_built, "select pair_id, path, status, bytes from images order by pair_id")
    assert fetched.rows_out == len(on_s3) == len(local) > 50
    assert not Paths.of(db).images.exists()  # nothing beside the database
    for (pair, path, status, size), (pair_l, path_l, status_l, size_l) in zip(on_s3, local):
        assert (pair, status, size) == (pair_l, status_l, size_l)
        assert path == f"{url}/{Path(path_l).relative_to(Path(path_l).parts[0])}"
        assert storage.read_bytes(path) == (town_built.parent / path_l).read_bytes()

    # a deleted object is fetched again, and only it
    s3.rm(on_s3[0][1].removeprefix("s3://"))
    assert run_stage(db, "fetch_images", fetch).rows_in == 1

    run_stage(db, "embed", models=FAKE_MODELS)
    run_stage(db, "index")
    vectors = "select pair_id, image from embeddings order by pair_id"
    for ours, reference in zip(rows(db, vectors), rows(town_built, vectors), strict=True):
        np.testing.assert_allclose(ours[1], reference[1], atol=1e-6)
    found = skyscript_db.retrieve("building", k=3, db=db, models=FAKE_MODELS)
    assert len(found) == 3 and all(p.startswith(f"{url}/") for p in found["image_path"])

    out = "s3://skyscript/export"
    run_stage(db, "export", Options(export=ExportConfig(out, shard_size=20)))
    train = list(csv.DictReader(io.StringIO(storage.read_bytes(f"{out}/train.csv").decode())))
    assert train and all(r["filepath"].startswith(f"{url}/") for r in train)
    shard = storage.read_bytes(f"{out}/webdataset/train/train-000000.tar")
    with tarfile.open(fileobj=io.BytesIO(shard)) as tar:
        first = tar.extractfile(f"{Path(train[0]['filepath']).stem}.jpg").read()
    assert first == storage.read_bytes(train[0]["filepath"])
    assert s3.exists("skyscript/export/manifest.json")


def test_a_folder_as_images_url_is_its_file_url_written_whole(tmp_path):
    config = FetchConfig(images_url=str(tmp_path / "images"))
    assert config.images_url == (tmp_path / "images").resolve().as_uri()
    target = storage.join(config.images_url, "A", "x.jpg")
    assert storage.write_atomic(target, b"jpeg") == 4
    assert [p.name for p in (tmp_path / "images" / "A").iterdir()] == ["x.jpg"]  # no partial
    assert storage.read_bytes(target) == b"jpeg"
    assert storage.listing(config.images_url) == ([target], [4])


def test_an_unknown_storage_is_a_clear_error():
    with pytest.raises(ConfigError, match="nosuch://bucket/x.jpg: cannot open this storage: "
                                          "Protocol not known"):
        storage.read_bytes("nosuch://bucket/x.jpg")


def test_a_jpeg_is_decoded_no_smaller_than_the_model_reads(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (790, 719, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "crop.jpg", quality=90)
    Image.fromarray(pixels).save(tmp_path / "crop.png")
    assert storage.open_rgb(str(tmp_path / "crop.jpg")).size == (719, 790)
    for at_least, size in ((64, (90, 99)), (224, (360, 395)), (400, (719, 790))):
        assert storage.open_rgb(str(tmp_path / "crop.jpg"), at_least).size == size
    assert storage.open_rgb(str(tmp_path / "crop.png"), 64).size == (719, 790)  # no DCT scales
