"""Fetch and embed on a real two-node Ray cluster on 127.0.0.1 (started here, stopped after):
the same rows, files and vectors as the local executor; kill -9 of the driver loses nothing; a
worker process that dies is retried."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import skyscript_db
from skyscript_db.config import ClusterConfig, EmbedConfig, FetchConfig, Options
from skyscript_db.db import Paths
from skyscript_db.errors import ConfigError
from skyscript_db.etl import cluster

from conftest import copy_db, free_port, run_stage, wait_for_port

# Ray turns token authentication on by default and reads these once, when it loads: every node
# and every driver (this process, the CLI it starts) gets the same token.
TOKEN = Path(tempfile.mkdtemp(prefix="skyscript-ray-")) / "token"
TOKEN.write_text(secrets.token_hex(16))
os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(TOKEN))
ray = pytest.importorskip("ray")
RAY = Path(sys.executable).with_name("ray")


def start_node(args: list[str], log: Path) -> subprocess.Popen:
    """`ray start --block` in a session of its own: the test stops it, and everything it
    started, by process group."""
    return subprocess.Popen([str(RAY), "start", *args, "--num-cpus=2", "--disable-usage-stats",
                             "--block"], stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_for_nodes(address: str, n: int, timeout: float = 90) -> None:
    cluster.connect(address)
    deadline = time.time() + timeout
    while sum(node["Alive"] for node in ray.nodes()) < n:
        if time.time() > deadline:
            raise TimeoutError(f"ray cluster at {address}: fewer than {n} nodes alive")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def ray_address(tmp_path_factory: pytest.TempPathFactory):
    """A head and a second node, two CPUs each; this process is the driver."""
    folder = tmp_path_factory.mktemp("ray")
    port = free_port()
    address = f"127.0.0.1:{port}"
    nodes = [start_node(["--head", f"--port={port}"], folder / "head.log")]
    try:
        wait_for_port(port, nodes[0])
        nodes.append(start_node([f"--address={address}"], folder / "node.log"))
        wait_for_nodes(address, 2)
        yield address
    finally:
        ray.shutdown()
        for node in nodes:
            os.killpg(node.pid, signal.SIGKILL)
            node.wait()


def rows(db: Path, query: str) -> list[tuple]:
    with skyscript_db.connect(db, read_only=True) as con:
        return con.execute(query).fetchall()


IMAGES = "select pair_id, path, status, width_px, height_px, bytes from images order by pair_id"


def test_fetch_and_embed_on_ray_match_the_local_executor(ray_address, town_built, town_requests,
                                                         tmp_path):
    on_ray = Options(fetch=FetchConfig(batch=32), embed=EmbedConfig(batch=16, actors=2),
                     cluster=ClusterConfig("ray", ray_address))
    db = copy_db(town_requests, tmp_path)
    fetched = run_stage(db, "fetch_images", on_ray)
    # the local build of the same requests (tests/conftest.py: town_built) is the reference
    assert fetched.rows_in == fetched.rows_out > 50
    assert rows(db, IMAGES) == rows(town_built, IMAGES)
    for (path,) in rows(db, "select path from images"):
        assert (db.parent / path).read_bytes() == (town_built.parent / path).read_bytes()
    embedded = run_stage(db, "embed", on_ray)
    on_ray_vectors = rows(db, "select pair_id, image, title, title_multi_objects "
                              "from embeddings order by pair_id")
    with skyscript_db.connect(db) as con:
        con.execute("delete from embeddings")
    run_stage(db, "embed")  # the same model, here
    local_vectors = rows(db, "select pair_id, image, title, title_multi_objects "
                             "from embeddings order by pair_id")
    assert embedded.rows_out == len(on_ray_vectors) == len(local_vectors) == fetched.rows_out
    for ours, reference in zip(on_ray_vectors, local_vectors):
        assert ours[0] == reference[0]
        np.testing.assert_allclose(np.array(ours[1:]), np.array(reference[1:]), atol=1e-5)


def test_kill_9_of_the_driver_mid_fetch_loses_nothing(ray_address, town_built, town_requests,
                                                      tmp_path):
    db = copy_db(town_requests, tmp_path)
    command = [str(Path(sys.executable).with_name("skyscript-db")), "fetch-images", "--db",
               str(db), "--executor", "ray", "--ray-address", ray_address]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = Paths.of(db).images
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.rglob("*.jpg"))) < 10 and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    recorded = len(rows(db, "select 1 from images"))
    rest = run_stage(db, "fetch_images", Options(cluster=ClusterConfig("ray", ray_address)))
    assert rest.rows_in == len(rows(db, "select 1 from image_requests")) - recorded
    assert rows(db, IMAGES) == rows(town_built, IMAGES)  # no duplicate, nothing lost
    assert not list(out.rglob("*.partial"))
    for (path,) in rows(db, "select path from images"):
        with Image.open(db.parent / path) as image:
            image.load()


def die_the_first_time(marker: Path) -> int:
    """Kill this worker process on the first call (as the OOM killer would); then succeed."""
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


def test_a_task_whose_worker_process_dies_is_retried(ray_address, tmp_path):
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers lack tests/
    marker = tmp_path / "first-worker"
    pid = cluster.RayPool(ClusterConfig("ray", ray_address)).submit(die_the_first_time,
                                                                    marker).result(timeout=120)
    assert marker.exists() and pid != int(marker.read_text())


def test_cluster_options_are_checked(town_requests, tmp_path):
    with pytest.raises(ConfigError, match="executor must be 'local' or 'ray', got 'spark'"):
        ClusterConfig("spark")
    with pytest.raises(ConfigError, match="ray_address needs executor 'ray'"):
        ClusterConfig("local", "auto")
    port = free_port()  # nothing listens there: one line at once, not minutes of Ray retrying
    db = copy_db(town_requests, tmp_path)
    done = subprocess.run([str(Path(sys.executable).with_name("skyscript-db")), "fetch-images",
                           "--db", str(db), "--executor", "ray", "--ray-address",
                           f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"error: ray address '127.0.0.1:{port}': nothing answers there" in done.stderr
    assert rows(db, "select count(*) from images") == [(0,)]  # nothing recorded
