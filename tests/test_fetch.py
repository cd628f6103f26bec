"""The fetch_images stage on the inline town: every request gets a file and a row, reruns resume,
kill -9 is safe, server failures are data."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

from PIL import Image

import skyscript_db
from skyscript_db.config import FetchConfig, Options
from skyscript_db.db import Paths

from conftest import copy_db, run_stage
from http_server import RangeServer

NAME = re.compile(r"^[anw]\d+_SYNTH_[A-Z0-9]+_xx\.jpg$")


def fetch(db, config=FetchConfig()):
    return run_stage(db, "fetch_images", Options(fetch=config))


def rows(db, query):
    with skyscript_db.connect(db, read_only=True) as con:
        return con.execute(query).fetchall()


def test_render_fetch_end_to_end_then_resume(town_requests, tmp_path):
    db = copy_db(town_requests, tmp_path)
    first = fetch(db, FetchConfig(workers=2, batch=20))
    again = fetch(db)
    with skyscript_db.connect(db) as con:
        con.execute("update images set status = 'failed', error = 'test' "
                    "where pair_id in (select pair_id from images order by pair_id limit 3)")
    retried = fetch(db)
    n_requests = rows(db, "select count(*) from image_requests")[0][0]
    images = rows(db, "select i.path, i.status, i.width_px, i.height_px, i.source, r.width_px, "
                      "r.height_px from images i join image_requests r using (pair_id)")
    assert first.rows_in == n_requests > 50 and first.rows_out == n_requests
    assert again.rows_in == 0 and retried.rows_in == 3
    assert len(images) == n_requests
    for path, status, width, height, source, req_w, req_h in images:
        file = db.parent / path
        assert status == "ok" and source == "render" and NAME.match(file.name)
        with Image.open(file) as image:
            assert image.format == "JPEG" and image.size == (width, height) == (req_w, req_h)


def test_kill_9_loses_nothing_recorded(town_requests, tmp_path):
    db = copy_db(town_requests, tmp_path)
    code = ("import sys; import skyscript_db; "
            "from skyscript_db.config import FetchConfig; "
            "skyscript_db.build(db=sys.argv[1], only='fetch_images', "
            "fetch=FetchConfig(workers=1, batch=16, processes=False))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(db)])
    out = Paths.of(db).images
    deadline = time.time() + 60
    while time.time() < deadline and len(list(out.rglob("*.jpg"))) < 40:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    recorded = rows(db, "select path from images where status = 'ok'")
    assert 0 < len(recorded)
    for (path,) in recorded:  # every recorded image is a whole, readable file
        with Image.open(db.parent / path) as image:
            image.load()
    rest = fetch(db, FetchConfig(workers=2, processes=False))
    n_requests, n_ok = rows(db, "select (select count(*) from image_requests), "
                                "(select count(*) from images where status = 'ok')")[0]
    assert rest.rows_in == n_requests - len(recorded)
    assert n_ok == n_requests
    assert not list(out.rglob("*.partial"))


def test_server_failures_are_recorded_and_the_run_goes_on(town_requests, tmp_path):
    db = copy_db(town_requests, tmp_path)
    (tmp_path / "srv").mkdir()
    with RangeServer(tmp_path / "srv") as server:
        item = {"type": "Feature", "stac_version": "1.0.0", "id": "everywhere",
                "bbox": [-180, -90, 180, 90],
                "geometry": {"type": "Polygon", "coordinates": [[[-180, -90], [180, -90],
                                                                 [180, 90], [-180, 90],
                                                                 [-180, -90]]]},
                "properties": {"datetime": "2022-01-01T00:00:00Z"}, "links": [],
                "assets": {"visual": {"href": f"{server.url}/fail500/missing.tif"}}}
        (tmp_path / "srv" / "item.json").write_text(json.dumps(item))
        catalog = f"{server.url}/ok/item.json"
        with skyscript_db.connect(db) as con:
            from skyscript_db.etl.register import add_stac

            add_stac(con, catalog, "STAC_500", 0.5)
            con.execute("insert into image_collections select code, url, gsd_m, footprint, "
                        "'stac', 'test' from stac_collections")
            con.execute("update image_requests set collection_code = 'STAC_500' where pair_id in "
                        "(select pair_id from image_requests order by pair_id limit 4)")
        result = fetch(db, FetchConfig(workers=1, processes=False, attempts=2))
        failed = rows(db, "select error from images where status = 'failed'")
    assert result.info["failed"] == 4 and len(failed) == 4
    assert all("TransientError" in e and "500" in e for (e,) in failed)
    assert result.rows_out == result.rows_in - 4  # every other request was fetched
    assert server.arrived("/fail500/") >= 8  # two tries each
