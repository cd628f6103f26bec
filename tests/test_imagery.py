"""Imagery sources on the real rasters in ../shared/data/imagery, over a real HTTP server too."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import transform, transform_bounds
from rasterio.windows import Window

from skyscript_db.etl.fetch import fetch_one
from skyscript_db.errors import NoCoverage, TransientError
from skyscript_db.etl.imagery.base import ImageRequest, RetryPolicy, to_uint8
from skyscript_db.etl.imagery.local import LocalSource
from skyscript_db.etl.imagery.raster import read_request
from skyscript_db.etl.imagery.stac import StacSource
from skyscript_db.etl.imagery.stac_items import window as stac_window

from conftest import IMAGERY
from http_server import RangeServer
from stac_fixtures import cog_and_half, stac_item

RASTERS = {  # file: RGB bands
    "naip-north-dakota-2020-5m.tif": (1, 2, 3),
    "landsat7-olinda.tif": (3, 2, 1),
    "sentinel2-ems-estuary-cog.tif": (3, 2, 1),
    "sentinel2-helsinki-seurasaari-2021.tif": (3, 2, 1),
}


def raster(name: str):
    path = IMAGERY / name
    if not path.exists():
        pytest.skip(f"{path} is missing: the shared test data is not beside this checkout")
    return path


def request_around(path, lon: float, lat: float, size_px: int, gsd_m: float,
                   epsg: int | None = None, pair_id: int = 1) -> ImageRequest:
    """A request centred on lon/lat, in the point's WGS 84 / UTM zone unless epsg is given."""
    epsg = epsg or (32600 if lat >= 0 else 32700) + math.floor((lon + 180) / 6) + 1
    (x,), (y,) = transform("EPSG:4326", f"EPSG:{epsg}", [lon], [lat])
    half = size_px * gsd_m / 2
    w, s, e, n = transform_bounds(f"EPSG:{epsg}", "EPSG:4326", x - half, y - half, x + half, y + half)
    return ImageRequest(pair_id, "node", pair_id, "TEST", size_px, size_px, gsd_m, epsg,
                        x - half, y - half, x + half, y + half, w, s, e, n)


def centre_lonlat(src) -> tuple[float, float]:
    w, s, e, n = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    return (w + e) / 2, (s + n) / 2


@pytest.mark.parametrize("name, epsg", [("sentinel2-helsinki-seurasaari-2021.tif", 32635),
                                        ("naip-north-dakota-2020-5m.tif", 26914),
                                        ("landsat7-olinda.tif", 31985)])
def test_aligned_request_reads_the_exact_pixels(name, epsg):
    """A request on the raster's own grid gives exactly what a direct windowed read gives."""
    with rasterio.open(raster(name)) as src:
        col, row, size = src.width // 4, src.height // 4, min(src.width, src.height) // 2
        x_min, y_max = src.xy(row, col, offset="ul")
        x_max, y_min = src.xy(row + size, col + size, offset="ul")
        w, s, e, n = transform_bounds(src.crs, "EPSG:4326", x_min, y_min, x_max, y_max)
        request = ImageRequest(1, "node", 1, "T", size, size, src.res[0], epsg,
                               x_min, y_min, x_max, y_max, w, s, e, n)
        ours, valid = read_request(src, request, RASTERS[name], Resampling.nearest)
        direct = src.read(list(RASTERS[name]), window=Window(col, row, size, size))
    assert valid.all()
    assert np.array_equal(ours, direct)


@pytest.mark.parametrize("name", list(RASTERS))
def test_ground_bounds_within_one_pixel_in_any_crs(name):
    """Centre a WGS 84 / UTM request on the raster's east edge: the raster must end in the image
    exactly where that edge lies on the ground (within one output pixel)."""
    path = raster(name)
    with rasterio.open(path) as src:
        lon, lat = centre_lonlat(src)
        mid_y = (src.bounds.bottom + src.bounds.top) / 2
        (edge_lon,), (edge_lat,) = transform(src.crs, "EPSG:4326", [src.bounds.right], [mid_y])
        request = request_around(path, edge_lon, edge_lat, 100, 10.0)
        data, valid = read_request(src, request, RASTERS[name])
    (edge_x,), _ = transform(src.crs, f"EPSG:{request.utm_epsg}", [src.bounds.right], [mid_y])
    expected_cols = (edge_x - request.x_min) / request.gsd_m
    assert abs(valid[50].sum() - expected_cols) <= 1.0
    assert data.shape == (3, 100, 100)


@pytest.mark.parametrize("name", list(RASTERS))
def test_local_source_scales_to_8_bit_and_pads_partial_cover(name):
    path = raster(name)
    with rasterio.open(path) as src:
        lon, lat = centre_lonlat(src)
        (edge_lon,), _ = transform(src.crs, "EPSG:4326", [src.bounds.right],
                                   [(src.bounds.bottom + src.bounds.top) / 2])
        dtype = src.dtypes[0]
    inside = LocalSource(str(path), RASTERS[name]).fetch(request_around(path, lon, lat, 64, 10.0))
    partial = LocalSource(str(path), RASTERS[name]).fetch(request_around(path, edge_lon, lat, 64, 10.0))
    assert inside.pixels.shape == (64, 64, 3) and inside.pixels.dtype == np.uint8
    assert inside.meta["coverage"] == 1.0 and inside.meta["dtype"] == dtype
    assert inside.pixels.std() > 5  # a stretched image, not a flat one
    assert 0.3 < partial.meta["coverage"] < 0.7
    assert (partial.pixels[:, -5:] == 0).all()  # east of the raster: padded black
    with pytest.raises(NoCoverage):
        LocalSource(str(path), RASTERS[name]).fetch(request_around(path, lon + 1, lat, 64, 10.0))


def with_collar(tmp_path):
    """The Seurasaari raster with nodata declared (0) and its eastern 40 % set to it, like the
    collar of a reprojected orthophoto."""
    with rasterio.open(raster("sentinel2-helsinki-seurasaari-2021.tif")) as src:
        data, profile = src.read(), src.profile | {"nodata": 0}
    data[:, :, int(data.shape[2] * 0.6):] = 0
    with rasterio.open(tmp_path / "collar.tif", "w", **profile) as out:
        out.write(data)
    return tmp_path / "collar.tif"


def test_a_raster_footprint_is_where_it_has_pixels(tmp_path):
    import skyscript_db
    from skyscript_db.etl.rasters import read_raster_info

    path = with_collar(tmp_path)
    info = read_raster_info(path)
    whole = read_raster_info(raster("sentinel2-helsinki-seurasaari-2021.tif"))
    with rasterio.open(path) as src, skyscript_db.connect() as con:
        mask_share = float((src.dataset_mask() > 0).mean())
        (west, east), (lat, _) = transform(src.crs, "EPSG:4326", [
            src.bounds.left + 0.2 * (src.bounds.right - src.bounds.left),
            src.bounds.left + 0.9 * (src.bounds.right - src.bounds.left)],
            [(src.bounds.bottom + src.bounds.top) / 2] * 2)
        share, valid, covers_west, covers_east = con.execute(
            "select st_area(st_geomfromtext($f)) / st_area(st_geomfromtext($w)), "
            "st_isvalid(st_geomfromtext($f)), st_covers(st_geomfromtext($f), st_point($x0, $y)), "
            "st_covers(st_geomfromtext($f), st_point($x1, $y))",
            {"f": info.footprint_wkt, "w": whole.footprint_wkt, "x0": west, "x1": east,
             "y": lat}).fetchone()
    assert valid and abs(share - mask_share) < 0.02 and mask_share < 0.6
    assert covers_west and not covers_east
    assert whole.footprint_wkt.startswith("POLYGON")  # no nodata: the edges, exactly


def test_a_crop_mostly_without_imagery_is_partial_coverage(tmp_path):
    path = with_collar(tmp_path)
    with rasterio.open(path) as src:
        (lon,), (lat,) = transform(src.crs, "EPSG:4326", [
            src.bounds.left + 0.6 * (src.bounds.right - src.bounds.left)],
            [(src.bounds.bottom + src.bounds.top) / 2])
    source = LocalSource(str(path), (3, 2, 1))
    request = request_around(path, lon, lat, 32, 10.0)  # half of it east of the data
    outcome = fetch_one(source, request, None, tmp_path / "a" / "img", RetryPolicy(), 90)
    assert outcome["status"] == "partial_coverage" and outcome["path"] is None
    assert 0.3 < outcome["coverage"] < 0.7 and "of the crop has no imagery" in outcome["error"]
    assert not (tmp_path / "a").exists()
    kept = fetch_one(source, request, None, tmp_path / "b" / "img", RetryPolicy(), 90,
                     keep_partial=True)
    assert kept["status"] == "partial_coverage" and (tmp_path / "b" / kept["path"]).exists()
    lenient = fetch_one(source, request, None, tmp_path / "c" / "img", RetryPolicy(), 90,
                        max_nodata=0.8)
    assert lenient["status"] == "ok" and lenient["coverage"] == outcome["coverage"]


def test_scaling_rule():
    valid = np.ones((2, 2), dtype=bool)
    raw = np.arange(12, dtype=np.uint8).reshape(3, 2, 2)
    assert np.array_equal(to_uint8(raw, valid), raw.transpose(1, 2, 0))
    wide = np.array([[[0, 1000], [2000, 10000]]] * 3, dtype=np.uint16)
    out = to_uint8(wide, valid)
    assert out.min() == 0 and out.max() == 255
    assert (to_uint8(wide, np.zeros((2, 2), dtype=bool)) == 0).all()


def test_retry_policy_retries_only_transient_errors():
    calls, sleeps = [], []

    def flaky():
        calls.append(1)
        raise TransientError("503")

    with pytest.raises(TransientError):
        RetryPolicy(attempts=3, base_s=1).call(flaky, sleep=sleeps.append)
    assert len(calls) == 3 and len(sleeps) == 2 and all(0 <= s <= 2 for s in sleeps)
    calls.clear()
    with pytest.raises(NoCoverage):
        RetryPolicy(attempts=3).call(lambda: calls.append(1) or (_ for _ in ()).throw(NoCoverage()),
                                     sleep=sleeps.append)
    assert len(calls) == 1
    assert RetryPolicy().delays(seed=5) == RetryPolicy().delays(seed=5)


COG = "sentinel2-ems-estuary-cog.tif"


@pytest.fixture
def stac_server(tmp_path):
    """The COG beside a static STAC catalog per server behaviour, served on 127.0.0.1."""
    shutil.copy(raster(COG), tmp_path / COG)
    with rasterio.open(tmp_path / COG) as src:
        bbox = list(transform_bounds(src.crs, "EPSG:4326", *src.bounds))
    with RangeServer(tmp_path, slow_s=3) as server:
        for mode in ("ok", "fail500", "slow", "drop"):
            item = {
                "type": "Feature", "stac_version": "1.0.0", "id": f"ems-{mode}",
                "bbox": bbox, "geometry": {"type": "Polygon", "coordinates": [[
                    [bbox[0], bbox[1]], [bbox[2], bbox[1]], [bbox[2], bbox[3]],
                    [bbox[0], bbox[3]], [bbox[0], bbox[1]]]]},
                "properties": {"datetime": "2021-06-01T10:00:00Z"},
                "links": [], "assets": {"visual": {"href": f"{server.url}/{mode}/{COG}",
                                                   "type": "image/tiff; application=geotiff"}},
            }
            catalog = {"type": "Catalog", "stac_version": "1.0.0", "id": f"test-{mode}",
                       "description": "test", "links": [
                           {"rel": "item", "href": f"{server.url}/ok/item-{mode}.json",
                            "type": "application/json"}]}
            (tmp_path / f"item-{mode}.json").write_text(json.dumps(item))
            (tmp_path / f"catalog-{mode}.json").write_text(json.dumps(catalog))
        yield server


def ems_request(pair_id: int = 1) -> ImageRequest:
    with rasterio.open(raster(COG)) as src:
        lon, lat = centre_lonlat(src)
    return request_around(raster(COG), lon, lat, 64, 10.0, pair_id=pair_id)


@pytest.fixture
def stac_choices(tmp_path):
    """One static catalog, four items over the same place that differ in date, cloud cover and
    coverage: `half` shows only the western half of the COG."""
    bbox = cog_and_half(raster(COG), tmp_path)
    items = {"old-clear": ("2019-06-01", 1, COG), "half": ("2021-06-01", 5, "half.tif"),
             "full": ("2020-06-01", 10, COG), "cloudy": ("2022-06-01", 80, COG)}
    with RangeServer(tmp_path) as server:
        links = []
        for name, (day, cloud, file) in items.items():
            item = stac_item(name, bbox, day, cloud, f"{server.url}/ok/{file}")
            (tmp_path / f"{name}.json").write_text(json.dumps(item))
            links.append({"rel": "item", "href": f"{server.url}/ok/{name}.json"})
        catalog = {"type": "Catalog", "stac_version": "1.0.0", "id": "choices",
                   "description": "test", "links": links}
        (tmp_path / "catalog.json").write_text(json.dumps(catalog))
        yield f"{server.url}/ok/catalog.json"


@pytest.mark.parametrize("window, max_cloud, item, acquired", [
    # least cloudy in the window first: `half` (5 %) cannot fill the request, `full` (10 %) can
    ("2020-01-01/..", 50, "full", "2020-06-01"),
    (None, None, "old-clear", "2019-06-01"),  # no window: the clearest of all
    ("2022-01-01/2022-12-31", None, "cloudy", "2022-06-01"),
    ("2022-06-01", None, "cloudy", "2022-06-01"),  # one day, the whole day
])
def test_stac_takes_the_least_cloudy_item_in_the_window_that_covers(stac_choices, window,
                                                                     max_cloud, item, acquired):
    source = StacSource(stac_choices, None, ("visual",), (3, 2, 1), window, max_cloud)
    fetched = source.fetch(ems_request())
    assert (fetched.meta["item"], fetched.acquired, fetched.meta["coverage"]) == (item, acquired,
                                                                                    1.0)


def test_stac_without_a_usable_item_is_no_coverage_naming_the_filters(stac_choices):
    with pytest.raises(NoCoverage, match=r"within 2030-01-01/\.\. under 20 % cloud"):
        StacSource(stac_choices, None, ("visual",), (3, 2, 1), "2030-01-01/..", 20).fetch(
            ems_request())
    # only the half-covering item in the window: it is kept, with its coverage
    half = StacSource(stac_choices, None, ("visual",), (3, 2, 1), "2021-01-01/2021-12-31")
    fetched = half.fetch(ems_request())
    assert fetched.meta["item"] == "half" and 0.3 < fetched.meta["coverage"] < 0.7
    with pytest.raises(ValueError, match="datetime '2020-13-01/..': '2020-13-01' is not an ISO"):
        stac_window("2020-13-01/..")


def test_a_fixed_stretch_gives_two_items_the_same_colours(stac_choices):
    """Per-image percentiles colour the half-covering item differently from the full one where
    both show the same ground; a collection's fixed stretch does not."""
    def both(stretch):
        fetched = [StacSource(stac_choices, None, ("visual",), (3, 2, 1), window,
                              stretch=stretch).fetch(ems_request()).pixels
                   for window in ("2021-01-01/2021-12-31", "2020-01-01/2020-12-31")]
        shared = fetched[0].any(axis=2)  # where the half item has pixels
        assert 0.3 < shared.mean() < 0.7
        return fetched[0][shared], fetched[1][shared]

    def shift(half, full) -> float:  # mean colour difference, 0-255
        return float(np.abs(half.astype(int) - full.astype(int)).mean())

    per_image, fixed = shift(*both(None)), shift(*both((500.0, 2000.0)))
    assert fixed < 1 < 5 < per_image  # (the two files resample a little differently)


def test_add_stac_registers_a_catalog_and_refuses_bad_filters(stac_server, tmp_path):
    """The command as a user runs it: a good registration is a row of stac_collections; bad
    filters are one-line errors before anything is read or written."""
    from typer.testing import CliRunner

    import skyscript_db
    from skyscript_db.cli import app

    db, url = tmp_path / "stac.duckdb", f"{stac_server.url}/ok/catalog-ok.json"
    runner = CliRunner()
    base = ["add-stac", url, "--db", str(db), "--code", "EMS", "--gsd", "10"]
    for args, message in ((["--datetime", "soon"], "datetime 'soon': 'soon' is not an ISO"),
                          (["--max-cloud", "120"], "max_cloud is a percentage (0-100), got 120")):
        result = runner.invoke(app, [*base, *args])
        assert result.exit_code != 0 and message in result.output, result.output
    result = runner.invoke(app, [*base, "--assets", "visual", "--max-cloud", "20"])
    assert result.exit_code == 0, result.output
    with skyscript_db.connect(db, read_only=True) as con:
        stac = con.execute("select code, url, assets, gsd_m from stac_collections").fetchall()
    assert stac == [("EMS", url, ["visual"], 10.0)]


def test_stac_asset_the_item_lacks_is_a_clear_per_request_failure(stac_server, tmp_path):
    source = StacSource(f"{stac_server.url}/ok/catalog-ok.json", None, ("image",), (3, 2, 1))
    outcome = fetch_one(source, ems_request(), None, tmp_path / "out", RetryPolicy(), 90)
    assert outcome["status"] == "failed"
    assert outcome["error"] == (f"ConfigError: item ems-ok of {stac_server.url}/ok/catalog-ok"
                                ".json has no asset 'image'; it has visual: register the "
                                "collection again with `add-stac --assets NAME`")


def test_stac_finds_the_item_and_reads_only_needed_ranges(stac_server):
    source = StacSource(f"{stac_server.url}/ok/catalog-ok.json", None, ("visual",), (3, 2, 1))
    fetched = source.fetch(ems_request())
    local = LocalSource(str(raster(COG)), (3, 2, 1)).fetch(ems_request())
    cog_hits = [h for h in stac_server.log if h.path.endswith(COG)]
    ranges = [h for h in cog_hits if h.range and h.status == 206]
    probes = [h for h in cog_hits if h not in ranges]  # GDAL's size probe: headers, then aborted
    assert fetched.meta["item"] == "ems-ok" and fetched.acquired == "2021-06-01"
    assert np.array_equal(fetched.pixels, local.pixels)
    assert ranges and len(probes) <= 1
    assert sum(h.bytes for h in ranges) < (raster(COG)).stat().st_size


@pytest.mark.parametrize("mode", ["fail500", "slow", "drop"])
def test_stac_faults_are_retried_then_recorded_as_failed(stac_server, tmp_path, mode):
    source = StacSource(f"{stac_server.url}/ok/catalog-{mode}.json", None, ("visual",),
                        (3, 2, 1), timeout_s=1)
    outcome = fetch_one(source, ems_request(), None, tmp_path / "out",
                        RetryPolicy(attempts=3, base_s=0.01), 90)
    assert outcome["status"] == "failed"
    assert "TransientError" in outcome["error"]
    assert stac_server.arrived(f"/{mode}/") >= 3  # every attempt reached the server
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.jpg"))
