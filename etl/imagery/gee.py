"""The gee source: Google Earth Engine through earthengine-api.

Everything that can be checked without an account is plain functions: the collection table, the
date window and cloud rule, the image expression sent (built from whatever `ee` module it is
given), the pixel grid of a request, the reading of the pixels that come back and which errors
are worth a retry. `GeeSource.fetch` only glues them to `ee`: one computePixels round trip per
collection tried, at most MAX_CONCURRENT at a time; it needs `earthengine authenticate` once and
a Cloud project (README: "Earth Engine").
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from skyscript_db.errors import NoCoverage, SourceUnavailable, TransientError
from skyscript_db.etl.imagery.base import Fetched, ImageRequest


@dataclass(frozen=True)
class GeeCollection:
    """How one catalogue collection becomes an image: its RGB bands and fixed stretch
    (vis_min..vis_max, the catalogue's own visualisation), its date window (`years` back from the
    build's end date, or `span` for a collection that has ended), its cloud rule, and the other
    collections tried, in order, when it has no pixels over a request."""

    asset: str
    rgb: tuple[str, str, str]
    vis_min: float
    vis_max: float
    cloud_property: str | None = None  # scene-level cloud percentage, for optical satellites
    years: int = 3
    span: tuple[str, str] | None = None  # [first day, day after the last) of an ended collection
    cloud_score: bool = False  # mask cloudy pixels with Cloud Score+ (Sentinel-2)
    fallbacks: tuple[str, ...] = ()  # codes, no coarser than this one


# Aerial collections no coarser than SkySat's 0.8 m, for its scattered public scenes.
_FINE_AERIAL = ("US", "FI", "DE", "CH", "ES")
COLLECTIONS: dict[str, GeeCollection] = {
    # renamed from ORTHO/Switzerland/SWISSIMAGE/10cm in the catalogue (2023)
    "CH": GeeCollection("Switzerland/SWISSIMAGE/orthos/10cm", ("R", "G", "B"), 0, 255, years=10),
    "ES": GeeCollection("Spain/PNOA/PNOA10", ("R", "G", "B"), 0, 255,
                        span=("2007-01-01", "2020-01-01")),  # the catalogue's 2007-2019
    "DE": GeeCollection("Germany/Brandenburg/orthos/20cm", ("R", "G", "B"), 0, 255, years=10),
    "FI": GeeCollection("Finland/SMK/V/50cm", ("R", "G", "B"), 0, 255, years=10),
    "US": GeeCollection("USDA/NAIP/DOQQ", ("R", "G", "B"), 0, 255, years=6),
    "P3": GeeCollection("SKYSAT/GEN-A/PUBLIC/ORTHO/RGB", ("R", "G", "B"), 0, 255, years=10,
                        fallbacks=_FINE_AERIAL),
    "P5": GeeCollection("SKYSAT/GEN-A/PUBLIC/ORTHO/MULTISPECTRAL", ("R", "G", "B"), 200, 6000,
                        years=10, fallbacks=("P3", *_FINE_AERIAL)),
    "S2": GeeCollection("COPERNICUS/S2_SR_HARMONIZED", ("B4", "B3", "B2"), 0, 3000,
                        "CLOUDY_PIXEL_PERCENTAGE", years=2, cloud_score=True),
    # the twin Landsat has the same 30 m grid: one covers the other's gaps (and L8 the years
    # before L9's 2021 launch)
    "L8": GeeCollection("LANDSAT/LC08/C02/T1_TOA", ("B4", "B3", "B2"), 0, 0.3, "CLOUD_COVER",
                        years=3, fallbacks=("L9",)),
    "L9": GeeCollection("LANDSAT/LC09/C02/T1_TOA", ("B4", "B3", "B2"), 0, 0.3, "CLOUD_COVER",
                        years=3, fallbacks=("L8",)),
}
MAX_CLOUD_PERCENT = 20
CLOUD_SCORE_PLUS = "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED"
CLEAR_AT_LEAST = 0.6  # cs_cdf: the catalogue example's threshold for clear pixels
DAY_MS = 86_400_000
MAX_CONCURRENT = 40  # computePixels calls in flight per process: the default project quota
TRANSIENT_HTTP = {429, 500, 502, 503, 504}
# EEException carries no status: these are the service's words for load, not for a bad request.
TRANSIENT_MESSAGES = ("too many requests", "quota", "timed out", "internal error",
                      "service unavailable", "deadline", "too many concurrent aggregations",
                      "capacity exceeded", "please try again")
# A mosaic of no image has no bands: selecting one is the service's way of saying so.
NO_IMAGE_MESSAGE = "did not match any bands"
DEADLINE_MS = 120_000


def date_window(end: str, years: int) -> tuple[str, str]:
    """[end - years, end) as ISO dates."""
    year, rest = int(end[:4]), end[4:]
    return f"{year - years}{rest}", end


def pixel_grid(request: ImageRequest) -> dict[str, Any]:
    """The computePixels grid: exactly the request's UTM rectangle and pixel size."""
    return {
        "dimensions": {"width": request.width_px, "height": request.height_px},
        "affineTransform": {
            "scaleX": request.gsd_m, "shearX": 0, "translateX": request.x_min,
            "shearY": 0, "scaleY": -request.gsd_m, "translateY": request.y_max,
        },
        "crsCode": f"EPSG:{request.utm_epsg}",
    }


def visualize_params(collection: GeeCollection) -> dict[str, Any]:
    """Linear stretch of the RGB bands from vis_min..vis_max to 0..255 (ee.Image.visualize)."""
    return {"bands": list(collection.rgb), "min": collection.vis_min, "max": collection.vis_max}


def filters(collection: GeeCollection, end: str) -> dict[str, Any]:
    rules: dict[str, Any] = {"date": collection.span or date_window(end, collection.years)}
    if collection.cloud_property:
        rules["cloud"] = (collection.cloud_property, MAX_CLOUD_PERCENT)
    return rules


def image_expression(ee: Any, collection: GeeCollection, region: Any, end: str) -> Any:
    """The image a request's pixels are computed from: the collection's scenes over `region`
    in its window (and under its cloud limit, cloudy pixels masked by Cloud Score+ where it
    has that), mosaicked with the clearest scene on top (satellites) or the newest (aerial)
    so partial scenes fill each other in; then its RGB stretched to 8 bit, a `valid` band (1
    where a scene has pixels) and a `day` band (days since 1970 of the scene shown)."""
    rules = filters(collection, end)
    images = ee.ImageCollection(collection.asset).filterBounds(region).filterDate(*rules["date"])
    if "cloud" in rules:
        images = images.filter(ee.Filter.lt(*rules["cloud"]))
    if collection.cloud_score:
        images = images.linkCollection(ee.ImageCollection(CLOUD_SCORE_PLUS), ["cs_cdf"]).map(
            lambda image: image.updateMask(image.select("cs_cdf").gte(CLEAR_AT_LEAST)))
    first_band = collection.rgb[0]
    images = images.map(lambda image: image.addBands(
        ee.Image.constant(image.date().millis().divide(DAY_MS).floor()).toInt32()
        .updateMask(image.select(first_band).mask()).rename("day")))
    # mosaic() draws the collection's last image on top
    on_top_last = (collection.cloud_property, False) if collection.cloud_property \
        else ("system:time_start", True)
    mosaic = images.sort(*on_top_last).mosaic()
    valid = mosaic.select(first_band).mask().gt(0).unmask(0).toUint8().rename("valid")
    return (mosaic.visualize(**visualize_params(collection)).unmask(0)
            .addBands(valid).addBands(mosaic.select("day").unmask(0)))


def read_pixels(pixels: np.ndarray, asset: str) -> Fetched:
    """computePixels' structured array -> RGB, with the date of the scene most of the valid
    pixels show; a request with no valid pixel is NoCoverage."""
    valid = pixels["valid"] > 0
    if not valid.any():
        raise NoCoverage(f"{asset}: no image has pixels over the request")
    rgb = np.dstack([pixels[b] for b in ("vis-red", "vis-green", "vis-blue")]).astype(np.uint8)
    rgb[~valid] = 0
    days, counts = np.unique(pixels["day"][valid], return_counts=True)
    acquired = np.datetime64(int(days[counts.argmax()]), "D").item().isoformat()
    return Fetched(rgb, source="gee", acquired=acquired, meta={
        "asset": asset, "coverage": round(float(valid.mean()), 4),
        "days": [np.datetime64(int(d), "D").item().isoformat() for d in (days[0], days[-1])]})


def is_transient(error: Exception) -> bool:
    """Quota, capacity, server and network errors are retried; bad requests and missing assets
    are not."""
    if isinstance(error, OSError):  # ConnectionError, TimeoutError, requests' errors
        return True
    status = getattr(getattr(error, "resp", None), "status", None) or getattr(error, "status", None)
    if status is not None:
        return int(status) in TRANSIENT_HTTP
    text = str(error).lower()
    return any(words in text for words in TRANSIENT_MESSAGES)


@dataclass(frozen=True)
class GeeSource:
    code: str
    project: str | None = None
    end_date: str = "2024-01-01"
    name: str = "gee"

    def check(self) -> None:
        """Earth Engine answers for this project: credentials found and authorised."""
        try:
            import ee
        except ImportError as e:  # pragma: no cover - earthengine-api is a dependency
            raise SourceUnavailable(f"Earth Engine: {e}") from e
        try:
            _initialize(ee, self.project)
        except Exception as e:  # ee.EEException, google.auth's errors, network errors
            message = " ".join(str(e).split())
            raise SourceUnavailable(
                f"Earth Engine: {message} Run `earthengine authenticate` once, pass "
                "--gee-project YOUR_CLOUD_PROJECT, or leave Earth Engine out (--imagery render, "
                "or --collections with your own imagery)") from e

    def fetch(self, request: ImageRequest, payload: Any = None) -> Fetched:
        """The request's pixels from this source's collection, or from its fallbacks in order
        (on the same grid) when it has none there."""
        import ee  # only users of this source need an Earth Engine account

        _initialize(ee, self.project)
        missed = []
        for code in (self.code, *COLLECTIONS[self.code].fallbacks):
            try:
                fetched = self._fetch(ee, COLLECTIONS[code], request)
            except NoCoverage as e:
                missed.append(str(e))
                continue
            if code != self.code:
                fetched.collection = code
                fetched.meta["fallback_from"] = COLLECTIONS[self.code].asset
            return fetched
        raise NoCoverage("; ".join(missed))

    def _fetch(self, ee: Any, collection: GeeCollection, request: ImageRequest) -> Fetched:
        region = ee.Geometry.Rectangle([request.west, request.south, request.east, request.north])
        try:
            with _in_flight:  # one round trip: no getInfo before it
                pixels = ee.data.computePixels({
                    "expression": image_expression(ee, collection, region, self.end_date),
                    "fileFormat": "NUMPY_NDARRAY",
                    "grid": pixel_grid(request),
                })
        except (ee.EEException, OSError) as e:
            if NO_IMAGE_MESSAGE in str(e):
                raise NoCoverage(f"{collection.asset}: no image over the request") from e
            raise (TransientError(f"{type(e).__name__}: {e}") if is_transient(e) else e) from e
        return read_pixels(pixels, collection.asset)


_in_flight = threading.BoundedSemaphore(MAX_CONCURRENT)
_initialized: set[str | None] = set()
_initializing = threading.Lock()


def _initialize(ee: Any, project: str | None) -> None:
    """Once per process and project, however many fetch threads call it first at the same
    time: the high-volume endpoint (the one meant for many parallel computePixels calls), and a
    deadline, so a hung request fails (and is retried) instead of holding a worker forever."""
    with _initializing:
        if project not in _initialized:
            ee.Initialize(project=project, opt_url=ee.data.HIGH_VOLUME_API_BASE_URL)
            ee.data.setDeadline(DEADLINE_MS)
            _initialized.add(project)
