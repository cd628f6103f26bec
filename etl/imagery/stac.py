"""The stac source: any STAC API or static catalog, reading Cloud-Optimized GeoTIFFs by HTTP range
requests (GDAL's /vsicurl/ through rasterio), so only the blocks under the request travel."""

from __future__ import annotations

import ctypes
import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import rasterio
from rasterio.errors import RasterioIOError

from skyscript_db.errors import ConfigError, NoCoverage, TransientError
from skyscript_db.etl.imagery.base import Fetched, ImageRequest, to_uint8
from skyscript_db.etl.imagery.raster import read_request

# GDAL over HTTP: no retries of its own (our RetryPolicy decides); never list directories.
GDAL_HTTP = {
    "GDAL_HTTP_MAX_RETRY": 0,
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_USE_HEAD": "NO",
    "VSI_CACHE": "FALSE",
}
ITEMS_TRIED = 5  # per request, before the fullest partial read is kept
_TRANSIENT_MARKERS = ("HTTP response code: 5", "timed out", "Timeout", "Connection",
                      "connection", "transfer closed", "Recv failure", "reset by peer",
                      "HTTP response code: 429", "Read error", "Read failed", "IReadBlock failed")


@dataclass(frozen=True)
class StacSource:
    """`url`: a STAC API root or a static catalog/collection JSON. `assets`: one asset holding the
    bands (`rgb_bands` picks them) or three single-band assets in R, G, B order. `datetime`: the
    window items must fall in ('2020-01-01/2023-12-31', either end may be '..'); `max_cloud`: the
    most `eo:cloud_cover` (percent) an item may have. Items are tried least cloudy first, then
    newest; one that leaves part of the request without pixels gives way to the next."""

    url: str
    collection: str | None
    assets: Sequence[str]
    rgb_bands: Sequence[int] = (1, 2, 3)
    datetime: str | None = None
    max_cloud: float | None = None
    timeout_s: int = 30
    name: str = "stac"

    def fetch(self, request: ImageRequest, payload: Any = None) -> Fetched:
        best: Fetched | None = None
        for item in self.find_items(request)[:ITEMS_TRIED]:
            fetched = self._read_item(item, request)
            if fetched.meta["coverage"] == 1:
                return fetched
            if best is None or fetched.meta["coverage"] > best.meta["coverage"]:
                best = fetched
        if best is None or best.meta["coverage"] == 0:
            raise NoCoverage(f"no item of {self.url} has pixels over the request")
        return best  # the fullest of the partial ones

    def find_items(self, request: ImageRequest) -> list[pystac.Item]:
        """The items whose footprint intersects the request's lon/lat box, in the window and
        under the cloud limit, least cloudy first (no cloud cover: last), then newest."""
        bbox = (request.west, request.south, request.east, request.north)
        try:
            found = search_items(self.url, self.collection, bbox, self.datetime)
        except Exception as e:  # pystac reads JSON with urllib or requests: any I/O error
            raise _classify(e) from e
        start, end = window(self.datetime)
        items = [i for i in found if _overlaps(i.bbox, bbox) and _in_window(i, start, end)
                 and (self.max_cloud is None or _cloud(i) <= self.max_cloud)]
        if not items:
            raise NoCoverage(f"no item of {self.url} covers the request"
                             + (f" within {self.datetime}" if self.datetime else "")
                             + (f" under {self.max_cloud:g} % cloud" if self.max_cloud is not None
                                else ""))
        newest_first = sorted(items, key=lambda i: (_when(i).isoformat() if _when(i) else "",
                                                    i.id), reverse=True)
        return sorted(newest_first, key=_cloud)  # stable: newest first among equal clouds

    def _read_item(self, item: pystac.Item, request: ImageRequest) -> Fetched:
        missing = [a for a in self.assets if a not in item.assets]
        if missing:  # e.g. Earth Search's NAIP items call theirs `image`, not `visual`
            raise ConfigError(f"item {item.id} of {self.url} has no asset "
                              f"{', '.join(map(repr, missing))}; it has "
                              f"{', '.join(sorted(item.assets))}: register the collection "
                              "again with `add-stac --assets NAME`")
        hrefs = [item.assets[a].get_absolute_href() for a in self.assets]
        if len(hrefs) == 1:
            data, valid = _read(hrefs[0], request, self.rgb_bands, self.timeout_s)
        else:
            parts = [_read(href, request, [1], self.timeout_s) for href in hrefs]
            data = np.concatenate([p[0] for p in parts])
            valid = np.logical_and.reduce([p[1] for p in parts])
        acquired = item.datetime.date().isoformat() if item.datetime else None
        return Fetched(to_uint8(data, valid), source=self.name, acquired=acquired,
                       meta={"item": item.id, "hrefs": hrefs,
                             "coverage": round(float(valid.mean()), 4)})


def _when(item: pystac.Item) -> dt.datetime | None:
    return item.datetime or item.common_metadata.start_datetime


def _cloud(item: pystac.Item) -> float:
    cloud = item.properties.get("eo:cloud_cover")
    return float(cloud) if cloud is not None else math.inf


def window(text: str | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """'START/END' (dates or ISO times, UTC unless said; '..' leaves an end open; a date as END
    means the whole day) or one date; a ValueError names what is wrong."""
    if not text:
        return None, None
    start, _, end = text.partition("/")

    def parse(value: str, whole_day: bool) -> dt.datetime | None:
        if value in ("", ".."):
            return None
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError as e:
            raise ValueError(f"datetime {text!r}: {value!r} is not an ISO date or time") from e
        when = when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
        return when + dt.timedelta(days=1, microseconds=-1) if whole_day and len(value) == 10 \
            else when

    return parse(start, False), parse(end or start, True)


def _in_window(item: pystac.Item, start: dt.datetime | None, end: dt.datetime | None) -> bool:
    when = _when(item)
    if start is None and end is None:
        return True
    return when is not None and (start is None or when >= start) and (end is None or when <= end)


def search_items(url: str, collection: str | None, bbox: tuple,
                 datetime: str | None = None) -> list[pystac.Item]:
    """Items near bbox: searched by a STAC API (in the window, when given), or read from a
    static catalog (cached)."""
    if not url.endswith(".json"):
        from pystac_client import Client

        search = Client.open(url).search(collections=[collection] if collection else None,
                                         bbox=bbox, datetime=datetime, max_items=100)
        return list(search.items())
    return [i for i in _static_items(url) if collection is None or i.collection_id == collection]


@cache
def _static_items(url: str) -> tuple[pystac.Item, ...]:
    root = pystac.read_file(url)
    if isinstance(root, pystac.Item):
        return (root,)
    return tuple(root.get_items(recursive=True))


def _overlaps(a: Sequence[float] | None, b: Sequence[float]) -> bool:
    return a is not None and a[0] < b[2] and a[2] > b[0] and a[1] < b[3] and a[3] > b[1]


def _read(href: str, request: ImageRequest, bands: Sequence[int],
          timeout_s: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        with rasterio.Env(**GDAL_HTTP, GDAL_HTTP_TIMEOUT=timeout_s), rasterio.open(href) as src:
            return read_request(src, request, bands)
    except (RasterioIOError, rasterio.errors.RasterioError) as e:
        _forget(href)  # else GDAL answers the next try from its memory of this failure
        raise _classify(e) from e


@cache
def _gdal_clear_cache() -> Callable[[bytes], None] | None:
    """GDAL's VSICurlPartialClearCache, from the libgdal that rasterio's wheel bundles."""
    libs = Path(rasterio.__file__).parent.with_name("rasterio.libs")
    for lib in sorted(libs.glob("libgdal*")):
        clear = ctypes.CDLL(str(lib)).VSICurlPartialClearCache
        clear.argtypes = [ctypes.c_char_p]
        return clear
    return None  # a rasterio built against a system GDAL: retries may reuse the cached failure


def _forget(href: str) -> None:
    clear = _gdal_clear_cache()
    if clear is not None:
        clear(f"/vsicurl/{href}".encode())


def _classify(error: Exception) -> Exception:
    text = str(error)
    if any(marker in text for marker in _TRANSIENT_MARKERS):
        return TransientError(text.splitlines()[0] if text else type(error).__name__)
    return error
