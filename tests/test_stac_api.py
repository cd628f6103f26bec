"""The stac source against a real STAC API on 127.0.0.1: `rustac serve` (Rust, in-memory
backend) behind a proxy that can answer 429 and 500, over items of the real COG in
../shared/data/imagery that differ in date, cloud cover and coverage."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import types
from pathlib import Path

import pystac
import pytest

import skyscript_db
from skyscript_db import queries
from skyscript_db.errors import InputError
from skyscript_db.etl.fetch import _sources, fetch_one
from skyscript_db.etl.imagery import stac_items
from skyscript_db.etl.imagery.base import RetryPolicy
from skyscript_db.etl.imagery.stac import StacSource
from skyscript_db.etl.register import add_stac
from skyscript_db.config import FetchConfig

from conftest import free_port, wait_for_port
from http_server import FlakyProxy, RangeServer
from stac_fixtures import cog_and_half, stac_item
from test_imagery import COG, ems_request, raster

RUSTAC = shutil.which("rustac") or str(Path(sys.executable).with_name("rustac"))
# Tried in this order by default (least cloudy, then newest): `half` cannot fill a request,
# `full` can. Listed last, so the search finds them on its third page of five.
ITEMS = [(f"filler-{i}", f"202{i % 4}-0{1 + i % 9}-15", 40 + 4 * i, COG) for i in range(10)] + [
    ("new-cloudy", "2023-09-01", 45, COG), ("old-clear", "2019-06-01", 1, COG),
    ("half", "2021-06-01", 2, "half.tif"), ("full", "2020-06-01", 10, COG)]


@pytest.fixture
def stac_api(tmp_path):
    """(proxy, COG server): rustac serves ITEMS (collection `test`) and advertises the proxy's
    address, so every request of the client goes through it."""
    if not Path(RUSTAC).exists():
        pytest.skip("rustac is not installed (pip install rustac)")
    bbox = cog_and_half(raster(COG), tmp_path)
    with RangeServer(tmp_path) as cogs:
        features = [stac_item(name, bbox, day, cloud, f"{cogs.url}/unsigned/{file}", "test")
                    for name, day, cloud, file in ITEMS]
        (tmp_path / "items.json").write_text(json.dumps(
            {"type": "FeatureCollection", "features": features}))
        proxy_port, api_port = free_port(), free_port()
        api = subprocess.Popen(
            [RUSTAC, "serve", str(tmp_path / "items.json"), "--create-collections",
             "--addr", f"http://127.0.0.1:{proxy_port}", "--bind", f"127.0.0.1:{api_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for_port(api_port, api)
            with FlakyProxy(f"http://127.0.0.1:{api_port}", port=proxy_port) as proxy:
                yield proxy, cogs
        finally:
            os.killpg(api.pid, signal.SIGTERM)
            api.wait()


def test_the_least_cloudy_covering_item_in_the_window_is_found_pages_away(stac_api,
                                                                           monkeypatch):
    proxy, _ = stac_api
    monkeypatch.setattr(stac_items, "PAGE_SIZE", 5)
    source = StacSource(proxy.url, "test", ("visual",), (3, 2, 1), "2020-01-01/..", 50)
    fetched = source.fetch(ems_request())
    assert (fetched.meta["item"], fetched.acquired, fetched.meta["coverage"]) == (
        "full", "2020-06-01", 1.0)
    assert proxy.searches == 3  # 13 items in the window: pages of 5, 5 and 3
    newest = StacSource(proxy.url, "test", ("visual",), (3, 2, 1), "2020-01-01/..", 50,
                        sortby="-datetime").fetch(ems_request())
    assert (newest.meta["item"], newest.acquired) == ("new-cloudy", "2023-09-01")


def test_rate_limits_and_server_errors_are_retried(stac_api, tmp_path):
    proxy, _ = stac_api
    source = StacSource(proxy.url, "test", ("visual",), (3, 2, 1), "2020-01-01/..", 50,
                        timeout_s=5)
    proxy.failures = [429, 500]
    outcome = fetch_one(source, ems_request(), None, tmp_path / "a", RetryPolicy(3, 0.01), 90)
    assert outcome["status"] == "ok" and proxy.failures == []
    proxy.failures = [503, 429, 502]
    outcome = fetch_one(source, ems_request(), None, tmp_path / "b", RetryPolicy(3, 0.01), 90)
    assert outcome["status"] == "failed" and outcome["error"].startswith(
        "TransientError: HTTP 502")
    proxy.failures = [404]  # not worth a retry: the first answer is the outcome
    outcome = fetch_one(source, ems_request(), None, tmp_path / "c", RetryPolicy(3, 0.01), 90)
    assert outcome["status"] == "failed" and proxy.failures == []
    assert "TransientError" not in outcome["error"]


def test_registered_access_settings_reach_the_search_and_the_reads(stac_api, monkeypatch):
    """add-stac's --modifier signs the items the API returns (here a stand-in for
    planetary_computer that moves hrefs from /unsigned/ to /signed/), its --option sets GDAL
    options for the reads (a User-Agent the COG server sees), its --sortby orders the items."""
    proxy, cogs = stac_api

    def sign_inplace(obj):
        items = obj.items if isinstance(obj, pystac.ItemCollection) else \
            [obj] if isinstance(obj, pystac.Item) else []
        for item in items:
            for asset in item.assets.values():
                asset.href = asset.href.replace("/unsigned/", "/signed/")
        if isinstance(obj, dict):
            for feature in obj.get("features", [obj]):
                for asset in feature.get("assets", {}).values():
                    asset["href"] = asset["href"].replace("/unsigned/", "/signed/")
        return obj

    monkeypatch.setitem(sys.modules, "planetary_computer",
                        types.SimpleNamespace(sign_inplace=sign_inplace))
    with skyscript_db.connect() as con:
        add_stac(con, proxy.url, "EMS", 10.0, "test", datetime="2020-01-01/..", max_cloud=50,
                 sortby="-eo:cloud_cover", modifier="planetary-computer",
                 options=["GDAL_HTTP_USERAGENT=skyscript-test"], stretch=(500.0, 2000.0))
        queries.load("50_image_collections.sql")["image_collections"].run(
            con, collections_csv=queries.seed_path("image_collections.csv"), imagery="render")
        source = _sources(con, FetchConfig())["EMS"]
    assert source.stretch == (500.0, 2000.0)
    fetched = source.fetch(ems_request())
    assert fetched.meta["item"] == "filler-2"  # the cloudiest under 50 % (48) in the window
    reads = [hit for hit in cogs.log if hit.path.endswith(COG)]
    assert reads and all(hit.path.startswith("/signed/") for hit in reads)
    assert {hit.agent for hit in reads if hit.status == 206} == {"skyscript-test"}


@pytest.mark.parametrize("settings, message", [
    ({"options": ["AWS_REQUEST_PAYER"]}, "GDAL option 'AWS_REQUEST_PAYER': give KEY=VALUE"),
    ({"sortby": "eo:cloud_cover, bad field"}, "is not a property name"),
    ({"modifier": "sign-it"}, "STAC modifier 'sign-it': known ones are planetary-computer"),
    ({"stretch": (3000.0, 0.0)}, r"stretch is LOW,HIGH with LOW < HIGH, got \(3000.0, 0.0\)"),
])
def test_add_stac_refuses_bad_access_settings(settings, message):
    with skyscript_db.connect() as con, pytest.raises(InputError, match=message):
        add_stac(con, "https://example.invalid/stac", "X", 1.0, **settings)
