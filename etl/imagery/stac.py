"""The stac source: any STAC API or static catalog, reading Cloud-Optimized GeoTIFFs by HTTP range
requests (GDAL's /vsicurl/ through rasterio), so only the blocks under the request travel.

Catalogues that need more than a URL say so per source: `modifier` signs asset URLs
(Planetary Computer's SAS tokens), `options` are GDAL configuration options for the reads
(`AWS_REQUEST_PAYER=requester` for Earth Search's NAIP and Landsat buckets,
`AWS_NO_SIGN_REQUEST=YES` for public `s3://` links); AWS credentials come from the environment."""

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

from skyscript_db.errors import ConfigError, NoCoverage, SourceUnavailable, TransientError
from skyscript_db.etl.imagery.base import Fetched, ImageRequest, to_uint8
from skyscript_db.etl.imagery.raster import read_request
from skyscript_db.etl.imagery.stac_items import (DEFAULT_SORTBY, cloud_within, in_window,
                                                 open_catalogue, overlaps, search_items,
                                                 sort_fields, sort_items, window)

# GDAL over HTTP: no retries of its own (our RetryPolicy decides); never list directories.
GDAL_HTTP = {
    "GDAL_HTTP_MAX_RETRY": 0,
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_USE_HEAD": "NO",
    "VSI_CACHE": "FALSE",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",  # one request for adjacent tiles
}
ITEMS_TRIED = 5  # per request, before the fullest partial read is kept
TRANSIENT_HTTP = {429, 500, 502, 503, 504}
_TRANSIENT_MARKERS = ("HTTP response code: 5", "timed out", "Timeout", "Connection",
                      "connection", "transfer closed", "Recv failure", "reset by peer",
                      "HTTP response code: 429", "Read error", "Read failed", "IReadBlock failed")


@dataclass(frozen=True)
class StacSource:
    """`url`: a STAC API root or a static catalog/collection JSON. `assets`: one asset holding the
    bands (`rgb_bands` picks them) or three single-band assets in R, G, B order. `datetime`: the
    window items must fall in ('2020-01-01/2023-12-31', either end may be '..'); `max_cloud`: the
    most `eo:cloud_cover` (percent) an item may have. `sortby`: the order items are tried in,
    STAC's sortby syntax over item properties ('-' first: descending; default least cloudy,
    then newest); one that leaves part of the request without pixels gives way to the next.
    `modifier`: 'planetary-computer' signs asset URLs; `options`: 'KEY=VALUE' GDAL options;
    `stretch`: (low, high) values mapped to 0-255 for data that is not 8-bit, the same for
    every item (else per image, from percentiles: colours then vary from crop to crop)."""

    url: str
    collection: str | None
    assets: Sequence[str]
    rgb_bands: Sequence[int] = (1, 2, 3)
    datetime: str | None = None
    max_cloud: float | None = None
    timeout_s: int = 30
    sortby: str | None = None
    modifier: str | None = None
    options: Sequence[str] = ()
    stretch: tuple[float, float] | None = None
    name: str = "stac"

    def check(self) -> None:
        try:
            open_catalogue(self.url, self.modifier, self.timeout_s)
        except ConfigError:
            raise
        except Exception as e:  # whatever reading JSON over HTTP raised
            raise SourceUnavailable(f"STAC catalogue {self.url} cannot be read "
                                    f"({str(e).strip()[:200] or type(e).__name__})") from e

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
        under the cloud limit, in `sortby` order (ties: by id)."""
        bbox = (request.west, request.south, request.east, request.north)
        order = sort_fields(self.sortby or DEFAULT_SORTBY)
        try:
            found = search_items(self.url, self.collection, bbox, self.datetime, order,
                                 self.modifier, self.timeout_s)
        except Exception as e:  # pystac reads JSON with urllib or requests: any I/O error
            raise _classify(e) from e
        start, end = window(self.datetime)
        items = [i for i in found if overlaps(i.bbox, bbox) and in_window(i, start, end)
                 and (self.max_cloud is None or cloud_within(i, self.max_cloud))]
        if not items:
            raise NoCoverage(f"no item of {self.url} covers the request"
                             + (f" within {self.datetime}" if self.datetime else "")
                             + (f" under {self.max_cloud:g} % cloud" if self.max_cloud is not None
                                else ""))
        return sort_items(items, order)

    def _read_item(self, item: pystac.Item, request: ImageRequest) -> Fetched:
        missing = [a for a in self.assets if a not in item.assets]
        if missing:  # e.g. Earth Search's NAIP items call theirs `image`, not `visual`
            raise ConfigError(f"item {item.id} of {self.url} has no asset "
                              f"{', '.join(map(repr, missing))}; it has "
                              f"{', '.join(sorted(item.assets))}: register the collection "
                              "again with `add-stac --assets NAME`")
        hrefs = [item.assets[a].get_absolute_href() for a in self.assets]
        env = {**GDAL_HTTP, "GDAL_HTTP_TIMEOUT": self.timeout_s, **gdal_options(self.options)}
        if len(hrefs) == 1:
            data, valid = _read(hrefs[0], request, self.rgb_bands, env)
        else:
            parts = [_read(href, request, [1], env) for href in hrefs]
            data = np.concatenate([p[0] for p in parts])
            valid = np.logical_and.reduce([p[1] for p in parts])
        acquired = item.datetime.date().isoformat() if item.datetime else None
        return Fetched(to_uint8(data, valid, self.stretch), source=self.name, acquired=acquired,
                       meta={"item": item.id, "hrefs": hrefs,
                             "coverage": round(float(valid.mean()), 4)})


def _read(href: str, request: ImageRequest, bands: Sequence[int],
          env: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    try:
        with rasterio.Env(**env), rasterio.open(href) as src:
            return read_request(src, request, bands)
    except (RasterioIOError, rasterio.errors.RasterioError) as e:
        _forget(href)  # else GDAL answers the next try from its memory of this failure
        raise _classify(e) from e


def gdal_options(options: Sequence[str]) -> dict[str, str]:
    """'KEY=VALUE' strings as GDAL configuration options; ValueError names a bad one."""
    parsed = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key.strip() or not key.strip().replace("_", "").isalnum():
            raise ValueError(f"GDAL option {option!r}: give KEY=VALUE, e.g. "
                             "AWS_REQUEST_PAYER=requester")
        parsed[key.strip()] = value
    return parsed


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
    """Rate limits, server errors and network failures are worth a retry; the rest is not."""
    status = getattr(error, "status_code", None) or getattr(error, "code", None)
    if isinstance(status, int):  # pystac_client's APIError; urllib's HTTPError
        return TransientError(f"HTTP {status}: {str(error).strip()[:200]}") \
            if status in TRANSIENT_HTTP else error
    text = str(error)
    if any(marker in text for marker in _TRANSIENT_MARKERS):
        return TransientError(text.splitlines()[0] if text else type(error).__name__)
    return error
