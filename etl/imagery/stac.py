"""The stac source: any STAC API or static catalog, reading Cloud-Optimized GeoTIFFs by HTTP range
requests (GDAL's /vsicurl/ through rasterio), so only the blocks under the request travel."""

from __future__ import annotations

import ctypes
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
_TRANSIENT_MARKERS = ("HTTP response code: 5", "timed out", "Timeout", "Connection",
                      "connection", "transfer closed", "Recv failure", "reset by peer",
                      "HTTP response code: 429", "Read error", "Read failed", "IReadBlock failed")


@dataclass(frozen=True)
class StacSource:
    """`url`: a STAC API root or a static catalog/collection JSON. `assets`: one asset holding the
    bands (`rgb_bands` picks them) or three single-band assets in R, G, B order."""

    url: str
    collection: str | None
    assets: Sequence[str]
    rgb_bands: Sequence[int] = (1, 2, 3)
    timeout_s: int = 30
    name: str = "stac"

    def fetch(self, request: ImageRequest, payload: Any = None) -> Fetched:
        item = self.find_item(request)
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
                       meta={"item": item.id, "hrefs": hrefs})

    def find_item(self, request: ImageRequest) -> pystac.Item:
        """The newest item whose footprint intersects the request's lon/lat box."""
        bbox = (request.west, request.south, request.east, request.north)
        try:
            items = [i for i in search_items(self.url, self.collection, bbox)
                     if _overlaps(i.bbox, bbox)]
        except Exception as e:  # pystac reads JSON with urllib or requests: any I/O error
            raise _classify(e) from e
        if not items:
            raise NoCoverage(f"no item of {self.url} covers the request")
        return max(items, key=lambda i: (i.datetime.isoformat() if i.datetime else "", i.id))


def search_items(url: str, collection: str | None, bbox: tuple) -> list[pystac.Item]:
    """Items near bbox: searched by a STAC API, or read from a static catalog (cached)."""
    if not url.endswith(".json"):
        from pystac_client import Client

        search = Client.open(url).search(collections=[collection] if collection else None,
                                         bbox=bbox, max_items=100)
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
