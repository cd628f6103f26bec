"""`skyscript-db serve`: the JSON API through Starlette's ASGI test client, the page in a real
headless Chromium, and the CLI as a user starts it. All on a copy of the inline town built with
the fake encoders (tests/fakes.py), so nothing outside this repository is needed."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

import skyscript_db
from skyscript_db.web.app import create_app
from skyscript_db.web.dataset import ConsoleLimits, Dataset

from conftest import copy_db, free_port
from fakes import FAKE_MODELS

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture(scope="module")
def served_db(town_built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_db(town_built, tmp_path_factory.mktemp("served"))


@pytest.fixture(scope="module")
def dataset(served_db: Path) -> Dataset:
    return Dataset(served_db, FAKE_MODELS, ConsoleLimits(rows=50, seconds=1.0))


@pytest.fixture(scope="module")
def client(dataset: Dataset) -> Iterator[TestClient]:
    with TestClient(create_app(dataset)) as client:  # closes the dataset when done
        yield client


def scalar(db: Path, query: str):
    """Tests read facts from town_built, the database the served copy was made of: a process
    holds one DuckDB instance per file, and the served one is locked down."""
    with skyscript_db.connect(db, read_only=True) as con:
        return con.execute(query).fetchone()[0]


def search(client: TestClient, **params) -> httpx.Response:
    return client.get("/api/search", params=params)


def test_search_returns_k_results_whose_images_are_served(town_built, client):
    results = search(client, q="building with roof", k=7).json()["results"]
    assert [r["rank"] for r in results] == list(range(1, 8))
    assert len({r["pair_id"] for r in results}) == 7
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    for result in results:
        image = client.get(result["image_url"])
        assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(image.content)).size == (
            scalar(town_built, f"select width_px from images where pair_id = {result['pair_id']}"),
            scalar(town_built, f"select height_px from images where pair_id = {result['pair_id']}"))


def test_search_honours_the_filter(town_built, client):
    kind = scalar(town_built, "select kind from pairs group by kind order by count(*) limit 1")
    matching = scalar(town_built, f"select count(*) from pairs where kind = '{kind}'")
    results = search(client, q="road", k=matching + 5, where=f"kind = '{kind}'").json()["results"]
    assert len(results) == matching and {r["kind"] for r in results} == {kind}


def test_search_by_an_uploaded_image_finds_that_image_first(town_built, client, served_db):
    path, pair_id = scalar(town_built, "select [path, pair_id::varchar] from images "
                                      "where status = 'ok' order by pair_id limit 1")
    body = (served_db.parent / path).read_bytes()
    found = client.post("/api/search/image", params={"k": 3, "against": "image"}, content=body)
    assert found.status_code == 200
    assert found.json()["results"][0]["pair_id"] == int(pair_id)
    refused = client.post("/api/search/image", content=b"not an image")
    assert refused.status_code == 400 and "not an image" in refused.json()["error"]


@pytest.mark.parametrize("where", [
    "1; drop table pairs",
    "pair_id in (select pair_id from pairs); delete from images",
    "pair_id > 0) union select * from read_csv('/etc/passwd'",
    "pair_id in (select 1 from read_csv('/etc/passwd'))",
])
def test_injection_through_the_filter_is_refused(client, served_db, where):
    before = hashlib.sha256(served_db.read_bytes()).hexdigest()
    answer = search(client, q="road", k=3, where=where)
    assert answer.status_code == 400 and answer.json()["error"]
    assert "Traceback" not in answer.text
    assert hashlib.sha256(served_db.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("path", ["/images/..%2F..%2Fetc%2Fpasswd", "/images/%2Fetc%2Fpasswd",
                                  "/images/../../../../etc/passwd"])
def test_images_outside_the_image_folder_are_refused(client, path):
    answer = client.get(path)
    assert answer.status_code == 404 and "root:" not in answer.text


@pytest.mark.parametrize("query, error", [
    ("select * from read_csv('/etc/passwd')", "disabled by configuration"),
    ("select * from read_text('/etc/passwd')", "disabled by configuration"),
    ("copy pairs to '/tmp/skyscript-serve-leak.csv'", "only read statements"),
    ("set enable_external_access = true", "only read statements"),
    ("attach '/tmp/skyscript-serve.duckdb' as other", "only read statements"),
    ("drop table images", "only read statements"),
])
def test_sql_console_cannot_touch_files_or_write(client, query, error):
    answer = client.post("/api/sql", json={"query": query})
    assert answer.status_code == 400 and error in answer.json()["error"]
    assert not Path("/tmp/skyscript-serve-leak.csv").exists()


def test_the_connection_itself_is_locked_down(client, dataset):
    """Past the query guard, DuckDB refuses too: files, and undoing the lock."""
    for query in ("select * from read_csv('/etc/passwd')",
                  "set enable_external_access = true",
                  "copy (select 1) to '/tmp/skyscript-serve-leak.csv'"):
        with pytest.raises(duckdb.Error, match="disabled|Cannot change configuration"):
            dataset.con.cursor().execute(query)


def test_sql_console_caps_rows_and_time(town_built, client):
    capped = client.post("/api/sql", json={"query": "select * from range(120)"}).json()
    assert len(capped["rows"]) == 50 and capped["truncated"] and capped["columns"] == ["range"]
    slow = client.post("/api/sql", json={"query": "select count(*) from range(100000000000)"})
    assert slow.status_code == 408 and "stopped" in slow.json()["error"]
    answer = client.post("/api/sql", json={"query": "select count(*) as n from pairs"}).json()
    assert answer == {"columns": ["n"], "rows": [[scalar(town_built, "select count(*) from pairs")]],
                      "truncated": False, "row_cap": 50}


def test_pair_page_has_geometry_tags_verdicts_and_neighbours(town_built, client):
    pair_id = scalar(town_built, "select pair_id from pairs where kind = 'polygon' "
                                "order by pair_id limit 1")
    pair = client.get(f"/api/pairs/{pair_id}").json()
    centre = pair["objects"][0]
    assert centre["centre"] and (centre["osm_type"], centre["osm_id"]) == (pair["osm_type"],
                                                                          pair["osm_id"])
    assert sum(o["centre"] for o in pair["objects"]) == 1
    assert centre["svg"].startswith("M ") and centre["svg"].endswith("Z")
    # the SVG is in the request's UTM metres, y negated, inside the image
    coords = np.array(centre["svg"].replace("M", "").replace("L", "").replace("Z", "").split(),
                      float).reshape(-1, 2)
    assert (coords[:, 0] >= pair["x_min"] - 1e-6).all() and (coords[:, 0] <= pair["x_max"] + 1e-6).all()
    assert (-coords[:, 1] >= pair["y_min"] - 1e-6).all() and (-coords[:, 1] <= pair["y_max"] + 1e-6).all()
    verdicts = {(t["key"], t["value"]): t for o in pair["objects"] for t in o["tags"]}
    for (key, value), tag in verdicts.items():
        visible, max_gsd, source = scalar(town_built, f"""
            select [visible::varchar, max_gsd_m::varchar, source] from tag_visibility
            where key = '{key.replace("'", "''")}' and value = '{value.replace("'", "''")}'""")
        assert (str(tag["visible"]).lower(), tag["source"]) == (visible, source)
        assert tag["visible_here"] == (visible == "true" and float(max_gsd) >= pair["gsd_m"])
    assert pair["split"] in ("train", "validation", "test")
    assert pair["image_url"] and pair["title"] and pair["title_multi_objects"]
    neighbours = [n["pair_id"] for n in pair["neighbours"]]
    assert neighbours and pair_id not in neighbours and len(set(neighbours)) == len(neighbours)
    assert client.get("/api/pairs/12345").status_code == 404


def test_overview_counts_agree_with_the_database(town_built, client):
    overview = client.get("/api/overview").json()
    pairs = scalar(town_built, "select count(*) from pairs")
    assert overview["summary"]["pairs"] == pairs
    assert sum(b["pairs"] for b in overview["histogram"]) == pairs
    assert sum(c["pairs"] for c in overview["collections"]) == pairs
    assert sum(s["pairs"] for s in overview["splits"]) == pairs - scalar(
        town_built, "select count(*) from pairs semi join (select * from selected_objects "
                   "where reason = 'benchmark') using (osm_type, osm_id)")
    cuts = {c["pct"]: c["pairs"] for c in overview["cuts"]}
    assert cuts == {n: scalar(town_built, f"select count(*) from pairs_top{n}") for n in (20, 30, 50)}
    assert {s["stage"] for s in overview["stages"]} >= {"ingest", "captions", "embed", "index"}


def test_errors_are_json_messages(client):
    assert search(client, q="road", k=0).json()["error"].startswith("k must be")
    assert search(client, q="road", k="many").json()["error"].startswith("k must be a whole")
    assert client.post("/api/sql", content=b"{").status_code == 400
    assert client.get("/no/such/page").json() == {"error": "Not Found"}


# ---- the page in a real browser -----------------------------------------------------------

@pytest.fixture(scope="module")
def server(town_built: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app served by uvicorn on 127.0.0.1, in a thread of this process, on a copy of the
    town of its own (one locked-down DuckDB instance per file and process) with the fake models;
    or, for the README's screenshots (`make screenshots`), on SKYSCRIPT_SERVE_DB with the real
    ones."""
    import uvicorn

    if os.environ.get("SKYSCRIPT_SERVE_DB"):
        dataset = Dataset(os.environ["SKYSCRIPT_SERVE_DB"])
    else:
        dataset = Dataset(copy_db(town_built, tmp_path_factory.mktemp("browsed")), FAKE_MODELS)
    port = free_port()
    config = uvicorn.Config(create_app(dataset), host="127.0.0.1",
                            port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield browser
        browser.close()


def screenshot(page, tmp_path: Path, name: str) -> Path:
    """Saved under the test's folder, and into SKYSCRIPT_SCREENSHOTS (the README's) when set."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path))
    if os.environ.get("SKYSCRIPT_SCREENSHOTS"):
        shutil.copy(path, Path(os.environ["SKYSCRIPT_SCREENSHOTS"]) / path.name)
    return path


ALL_IMAGES_LOADED = """(selector) => {
    const images = [...document.querySelectorAll(selector)];
    return images.length > 0 && images.every((i) => i.complete && i.naturalWidth > 0);
}"""


def test_search_and_pair_page_in_a_real_browser(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/")
    page.fill("#q", "building with roof")
    page.press("#q", "Enter")
    page.wait_for_selector("#results .card")
    page.wait_for_function(ALL_IMAGES_LOADED, arg="#results .card img")
    assert page.locator("#results .card").count() == 20
    assert page.is_visible("#untrained")  # the fake model is recorded as untrained
    screenshot(page, tmp_path, "serve-search")

    pair_id = page.locator("#results .card").first.get_attribute("data-pair")
    page.locator("#results .card").first.click()
    page.wait_for_selector("#pair-overlay .shape.centre")
    page.wait_for_function(ALL_IMAGES_LOADED, arg="#pair-image")
    assert page.url.endswith(f"#/pair/{pair_id}")
    outline = page.locator("#pair-overlay .shape.centre").bounding_box()
    picture = page.locator("#pair-image").bounding_box()
    assert outline["width"] > 0 or outline["height"] > 0
    assert picture["x"] - 5 <= outline["x"] <= picture["x"] + picture["width"] + 5
    assert page.locator("#pair-objects .object").count() >= 1
    assert page.locator("#pair-neighbours .card").count() >= 1
    screenshot(page, tmp_path, "serve-pair")

    page.goto(server + "/#/overview")
    page.wait_for_selector("#histogram svg rect.bar")
    assert page.locator("#histogram svg line.cut").count() == 3
    page.goto(server + "/#/sql")
    page.click("#sql-form button")
    page.wait_for_selector("#sql-result td")
    assert errors == []


@pytest.mark.parametrize("db, error", [
    ("missing.duckdb", "no such database"),
    ("requests", "no embeddings yet"),
])
def test_serve_refuses_a_database_it_cannot_serve(town_requests, tmp_path, db, error):
    from typer.testing import CliRunner

    from skyscript_db.cli import app

    path = town_requests if db == "requests" else tmp_path / db
    result = CliRunner().invoke(app, ["serve", "--db", str(path)])
    assert result.exit_code == 1 and error in result.output


def test_serve_command_serves_the_database(town_built, served_db):
    """As a user starts it: the CLI in its own process, read-only, on 127.0.0.1."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "skyscript_db", "serve", "--db", str(served_db), "--port",
         str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "serve did not answer within 120 s"
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/overview", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        assert answer.json()["summary"]["pairs"] == scalar(town_built,
                                                            "select count(*) from pairs")
        assert "<title>skyscript-db</title>" in httpx.get(f"http://127.0.0.1:{port}/").text
    finally:
        process.terminate()
        process.wait(20)
