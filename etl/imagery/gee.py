"""The gee source: Google Earth Engine through earthengine-api.

Everything that can be checked without an account is plain functions: the collection table, the
date window and cloud rule, the pixel grid of a request, the visualisation (8-bit) rule and which
errors are worth a retry. `GeeSource.fetch` only glues them to `ee` and needs
`earthengine authenticate` once and a Cloud project (README: "Earth Engine").
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from skyscript_db.errors import NoCoverage, TransientError
from skyscript_db.etl.imagery.base import Fetched, ImageRequest


@dataclass(frozen=True)
class GeeCollection:
    asset: str
    rgb: tuple[str, str, str]
    vis_min: float
    vis_max: float
    cloud_property: str | None = None  # scene-level cloud percentage, for optical satellites
    mosaic: bool = False  # mosaic the clearest scenes (satellites) or take the newest (aerial)
    years: int = 3  # look back this many years from the end date


COLLECTIONS: dict[str, GeeCollection] = {
    # renamed from ORTHO/Switzerland/SWISSIMAGE/10cm in the catalogue (2023)
    "CH": GeeCollection("Switzerland/SWISSIMAGE/orthos/10cm", ("R", "G", "B"), 0, 255, years=10),
    "ES": GeeCollection("Spain/PNOA/PNOA10", ("R", "G", "B"), 0, 255, years=10),
    "DE": GeeCollection("Germany/Brandenburg/orthos/20cm", ("R", "G", "B"), 0, 255, years=10),
    "FI": GeeCollection("Finland/SMK/V/50cm", ("R", "G", "B"), 0, 255, years=10),
    "US": GeeCollection("USDA/NAIP/DOQQ", ("R", "G", "B"), 0, 255, years=6),
    "P3": GeeCollection("SKYSAT/GEN-A/PUBLIC/ORTHO/RGB", ("R", "G", "B"), 0, 255, years=10),
    "P5": GeeCollection("SKYSAT/GEN-A/PUBLIC/ORTHO/MULTISPECTRAL", ("R", "G", "B"), 0, 10000,
                        years=10),
    "S2": GeeCollection("COPERNICUS/S2_SR_HARMONIZED", ("B4", "B3", "B2"), 0, 3000,
                        "CLOUDY_PIXEL_PERCENTAGE", mosaic=True, years=2),
    "L8": GeeCollection("LANDSAT/LC08/C02/T1_TOA", ("B4", "B3", "B2"), 0, 0.3, "CLOUD_COVER",
                        mosaic=True, years=3),
    "L9": GeeCollection("LANDSAT/LC09/C02/T1_TOA", ("B4", "B3", "B2"), 0, 0.3, "CLOUD_COVER",
                        mosaic=True, years=3),
}
MAX_CLOUD_PERCENT = 20
TRANSIENT_HTTP = {429, 500, 502, 503, 504}
# EEException carries no status: these are the service's words for load, not for a bad request.
TRANSIENT_MESSAGES = ("too many requests", "quota", "timed out", "internal error",
                      "service unavailable", "deadline", "too many concurrent aggregations",
                      "capacity exceeded", "please try again")
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
    start, stop = date_window(end, collection.years)
    rules: dict[str, Any] = {"date": (start, stop)}
    if collection.cloud_property:
        rules["cloud"] = (collection.cloud_property, MAX_CLOUD_PERCENT)
    return rules


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

    def fetch(self, request: ImageRequest, payload: Any = None) -> Fetched:
        import ee  # only users of this source need an Earth Engine account

        collection = COLLECTIONS[self.code]
        _initialize(ee, self.project)
        region = ee.Geometry.Rectangle([request.west, request.south, request.east, request.north])
        rules = filters(collection, self.end_date)
        images = (ee.ImageCollection(collection.asset).filterBounds(region)
                  .filterDate(*rules["date"]))
        if "cloud" in rules:
            prop, limit = rules["cloud"]
            images = images.filter(ee.Filter.lt(prop, limit)).sort(prop, False)
        else:
            images = images.sort("system:time_start")
        try:
            if images.size().getInfo() == 0:
                raise NoCoverage(f"{collection.asset}: no image over the request")
            image = images.mosaic() if collection.mosaic else images.sort(
                "system:time_start", False).first()
            newest = images.aggregate_max("system:time_start").getInfo()
            pixels = ee.data.computePixels({
                "expression": ee.Image(image).visualize(**visualize_params(collection)),
                "fileFormat": "NUMPY_NDARRAY",
                "grid": pixel_grid(request),
            })
        except (ee.EEException, OSError) as e:
            raise (TransientError(f"{type(e).__name__}: {e}") if is_transient(e) else e) from e
        rgb = np.dstack([pixels[b] for b in ("vis-red", "vis-green", "vis-blue")]).astype(np.uint8)
        acquired = np.datetime64(int(newest), "ms").astype("datetime64[D]").item().isoformat()
        return Fetched(rgb, source=self.name, acquired=acquired, meta={"asset": collection.asset})


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
