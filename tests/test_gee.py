"""The Earth Engine source, offline: the expression it would send (built against a stand-in for
the `ee` module that records every call), the grid, how the pixels that come back are read, the
fallbacks, the concurrency cap, error classification on the service's real messages, and
initialisation once under concurrent first calls."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from skyscript_db.errors import NoCoverage
from skyscript_db.etl.imagery import gee

from test_imagery import ems_request


class Expr:
    """Any ee object: every method call returns a new one whose text is the call chain;
    map(fn) records fn applied to an image called `image`."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __getattr__(self, name: str):
        def call(*args, **kwargs):
            if name == "map":
                return Expr(f"{self.text}.map({args[0](Expr('image')).text})")
            shown = [repr(a) if not isinstance(a, Expr) else a.text for a in args]
            shown += [f"{k}={v!r}" for k, v in kwargs.items()]
            return Expr(f"{self.text}.{name}({', '.join(shown)})")
        return call


class FakeEe:
    """The parts of `ee` the source touches; computePixels answers from `answers`, in order
    (an exception is raised), and records what was asked."""

    EEException = type("EEException", (Exception,), {})

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.asked: list[dict] = []
        self.ImageCollection = lambda asset: Expr(f"ImageCollection({asset!r})")
        self.Filter = Expr("Filter")
        self.Image = Expr("Image")
        self.Geometry = Expr("Geometry")
        self.data = self

    def computePixels(self, params: dict):
        self.asked.append(params)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def pixels(valid: np.ndarray, days: np.ndarray) -> np.ndarray:
    """A computePixels answer: grey where valid, the scenes' days since 1970."""
    out = np.zeros(valid.shape, dtype=[("vis-red", "u1"), ("vis-green", "u1"),
                                       ("vis-blue", "u1"), ("valid", "u1"), ("day", "i4")])
    for band in ("vis-red", "vis-green", "vis-blue"):
        out[band] = np.where(valid, 128, 0)
    out["valid"], out["day"] = valid, np.where(valid, days, 0)
    return out


def source(code: str, ee: FakeEe, monkeypatch) -> gee.GeeSource:
    import sys

    monkeypatch.setitem(sys.modules, "ee", ee)
    monkeypatch.setattr(gee, "_initialized", {None})
    return gee.GeeSource(code)


@pytest.mark.parametrize("code, parts", [
    ("S2", ["ImageCollection('COPERNICUS/S2_SR_HARMONIZED')", ".filterDate('2022-01-01', "
            "'2024-01-01')", ".filter(Filter.lt('CLOUDY_PIXEL_PERCENTAGE', 20))",
            ".linkCollection(ImageCollection('GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED'), "
            "['cs_cdf']).map(image.updateMask(image.select('cs_cdf').gte(0.6)))",
            # the clearest on top: mosaic() draws the last one on top
            ".sort('CLOUDY_PIXEL_PERCENTAGE', False).mosaic()",
            ".visualize(bands=['B4', 'B3', 'B2'], min=0, max=3000)"]),
    ("ES", ["ImageCollection('Spain/PNOA/PNOA10')", ".filterDate('2007-01-01', '2020-01-01')",
            ".sort('system:time_start', True).mosaic()",  # the newest on top
            ".visualize(bands=['R', 'G', 'B'], min=0, max=255)"]),
    ("P5", ["ImageCollection('SKYSAT/GEN-A/PUBLIC/ORTHO/MULTISPECTRAL')",
            ".visualize(bands=['R', 'G', 'B'], min=200, max=6000)"]),
])
def test_the_expression_sent_for_each_collection(code, parts, monkeypatch):
    ee = FakeEe(pixels(np.ones((64, 64), bool), np.full((64, 64), 19000)))
    fetched = source(code, ee, monkeypatch).fetch(ems_request())
    (asked,) = ee.asked
    text = asked["expression"].text
    positions = [text.index(part) for part in parts]  # each part is there, in this order
    assert positions == sorted(positions)
    assert ".addBands(Image.constant(image.date().millis().divide(86400000).floor())" \
        f".toInt32().updateMask(image.select({gee.COLLECTIONS[code].rgb[0]!r}).mask())" \
        ".rename('day'))" in text  # the day band is masked like the scene's pixels
    assert "cloud" not in text.lower() or code == "S2"
    assert asked["grid"] == gee.pixel_grid(ems_request()) and asked["fileFormat"] == \
        "NUMPY_NDARRAY"
    assert fetched.acquired == "2022-01-08" and fetched.meta["coverage"] == 1.0


def test_gee_request_grid_and_filters():
    request = ems_request()
    grid = gee.pixel_grid(request)
    assert grid["dimensions"] == {"width": 64, "height": 64}
    assert grid["crsCode"] == f"EPSG:{request.utm_epsg}"
    assert grid["affineTransform"]["translateX"] == request.x_min
    assert grid["affineTransform"]["translateY"] == request.y_max
    assert grid["affineTransform"]["scaleY"] == -request.gsd_m
    s2 = gee.COLLECTIONS["S2"]
    assert gee.filters(s2, "2024-01-01") == {"date": ("2022-01-01", "2024-01-01"),
                                             "cloud": ("CLOUDY_PIXEL_PERCENTAGE", 20)}
    assert "cloud" not in gee.filters(gee.COLLECTIONS["FI"], "2024-01-01")
    assert gee.filters(gee.COLLECTIONS["ES"], "2024-01-01") == {
        "date": ("2007-01-01", "2020-01-01")}


def test_the_date_is_the_scene_shown_and_masked_pixels_are_black(monkeypatch):
    valid = np.ones((64, 64), bool)
    valid[:, :16] = False  # a quarter with no scene
    days = np.where(np.arange(64)[None, :] < 48, 19000, 18000)  # most pixels: the newer scene
    fetched = source("CH", FakeEe(pixels(valid, days)), monkeypatch).fetch(ems_request())
    assert fetched.acquired == "2022-01-08"
    assert fetched.meta["coverage"] == 0.75 and fetched.meta["days"] == ["2019-04-14",
                                                                         "2022-01-08"]
    assert not fetched.pixels[:, :16].any() and (fetched.pixels[:, 16:] == 128).all()


def test_no_coverage_falls_back_to_the_next_collection_on_the_same_grid(monkeypatch):
    ee = FakeEe(FakeEe.EEException("Image.select: Pattern 'R' did not match any bands."),
                pixels(np.zeros((64, 64), bool), np.zeros((64, 64))),  # NAIP: all masked
                pixels(np.ones((64, 64), bool), np.full((64, 64), 19000)))  # Finland
    fetched = source("P3", ee, monkeypatch).fetch(ems_request())
    assert fetched.collection == "FI" and fetched.meta == {
        "asset": "Finland/SMK/V/50cm", "coverage": 1.0, "days": ["2022-01-08", "2022-01-08"],
        "fallback_from": "SKYSAT/GEN-A/PUBLIC/ORTHO/RGB"}
    assert [a["expression"].text.split(")")[0] for a in ee.asked] == [
        "ImageCollection('SKYSAT/GEN-A/PUBLIC/ORTHO/RGB'", "ImageCollection('USDA/NAIP/DOQQ'",
        "ImageCollection('Finland/SMK/V/50cm'"]
    assert all(a["grid"] == ee.asked[0]["grid"] for a in ee.asked)
    empty = [pixels(np.zeros((64, 64), bool), np.zeros((64, 64)))] * 6
    with pytest.raises(NoCoverage, match="SKYSAT.*; USDA/NAIP/DOQQ.*; .*PNOA10: no image"):
        source("P3", FakeEe(*empty), monkeypatch).fetch(ems_request())
    with pytest.raises(NoCoverage):  # a collection without fallbacks tries itself only
        source("S2", FakeEe(empty[0]), monkeypatch).fetch(ems_request())
    for code, collection in gee.COLLECTIONS.items():  # fallbacks are never coarser
        assert all(gsd(f) <= gsd(code) for f in collection.fallbacks), code


def gsd(code: str) -> float:
    from skyscript_db import queries

    seed = queries.sql_text("seeds/image_collections.csv").splitlines()[1:]
    return {line.split(",")[0]: float(line.split(",")[2]) for line in seed}[code]


def test_at_most_max_concurrent_requests_are_in_flight(monkeypatch):
    monkeypatch.setattr(gee, "_in_flight", threading.BoundedSemaphore(3))
    flying, most = 0, 0
    lock = threading.Lock()
    answer = pixels(np.ones((64, 64), bool), np.full((64, 64), 19000))

    class SlowEe(FakeEe):
        def computePixels(self, params):
            nonlocal flying, most
            with lock:
                flying += 1
                most = max(most, flying)
            time.sleep(0.05)
            with lock:
                flying -= 1
            return answer

    one = source("CH", SlowEe(), monkeypatch)
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda _: one.fetch(ems_request()), range(20)))
    assert most == 3


def test_gee_error_classification_by_status_and_message():
    class HttpError(Exception):
        def __init__(self, status):
            self.status = status

    assert gee.is_transient(HttpError(429)) and gee.is_transient(HttpError(503))
    assert not gee.is_transient(HttpError(400))
    assert gee.is_transient(Exception("Too many requests; quota exceeded"))
    assert not gee.is_transient(Exception("Image.load: Asset not found"))


@pytest.mark.parametrize("message, transient", [
    # the service's own words, as EEException (no status) carries them
    ("Too many concurrent aggregations.", True),
    ("Earth Engine capacity exceeded.", True),
    ("Computation timed out.", True),
    ("User memory limit exceeded.", False),
    ("Image.load: Image asset 'ORTHO/Switzerland/SWISSIMAGE/10cm' not found.", False),
    ("Collection.loadTable: Collection asset 'x' not found.", False),
])
def test_gee_errors_are_classified_from_real_messages(message, transient):
    import ee

    assert gee.is_transient(ee.EEException(message)) is transient


def test_gee_network_errors_are_transient():
    assert gee.is_transient(ConnectionError("connection reset by peer"))
    assert gee.is_transient(TimeoutError("read timed out"))


def test_gee_initialises_once_under_concurrent_first_calls(monkeypatch):
    calls: list[tuple] = []

    class FakeData:
        HIGH_VOLUME_API_BASE_URL = "https://earthengine-highvolume.googleapis.com"

        @staticmethod
        def setDeadline(ms):
            calls.append(("deadline", ms))

    class FakeEe:
        data = FakeData

        @staticmethod
        def Initialize(project=None, opt_url=None):
            time.sleep(0.05)  # slow enough that the other threads arrive meanwhile
            calls.append(("init", project, opt_url))

    monkeypatch.setattr(gee, "_initialized", set())
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: gee._initialize(FakeEe, "my-project"), range(8)))
    assert calls == [("init", "my-project", FakeData.HIGH_VOLUME_API_BASE_URL),
                     ("deadline", gee.DEADLINE_MS)]


def test_gee_table_matches_the_catalog_seed():
    from skyscript_db import queries

    seed = queries.sql_text("seeds/image_collections.csv").splitlines()[1:]
    codes = {line.split(",")[0]: line.split(",")[1] for line in seed}
    assert codes == {code: c.asset for code, c in gee.COLLECTIONS.items()}
