"""Read exactly a request's ground rectangle from any georeferenced raster, local or over HTTP.

GDAL's warper (through rasterio's WarpedVRT) reads only the blocks that cover the rectangle,
reprojects them to the request's UTM grid and resamples to its pixel size in one step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import from_bounds
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds

from skyscript_db.errors import NoCoverage
from skyscript_db.etl.imagery.base import ImageRequest


def request_grid(request: ImageRequest) -> tuple[CRS, rasterio.Affine]:
    crs = CRS.from_epsg(request.utm_epsg)
    transform = from_bounds(request.x_min, request.y_min, request.x_max, request.y_max,
                            request.width_px, request.height_px)
    return crs, transform


def read_request(src: rasterio.DatasetReader, request: ImageRequest, bands: Sequence[int],
                 resampling: Resampling = Resampling.bilinear) -> tuple[np.ndarray, np.ndarray]:
    """(bands, H, W) values on the request's grid and the (H, W) validity mask.

    Rule for partial coverage: the part outside the raster (or nodata) is padded and marked not
    valid (black in the image); a request that does not overlap the raster at all is NoCoverage.
    """
    crs, transform = request_grid(request)
    left, bottom, right, top = transform_bounds(src.crs, crs, *src.bounds)
    if (right <= request.x_min or left >= request.x_max or top <= request.y_min
            or bottom >= request.y_max):
        raise NoCoverage(f"{src.name} does not cover the request")
    with WarpedVRT(src, crs=crs, transform=transform, width=request.width_px,
                   height=request.height_px, resampling=resampling, add_alpha=True) as vrt:
        data = vrt.read(list(bands))
        valid = vrt.read(vrt.count) > 0  # the alpha band: 0 outside the raster or on nodata
    if not valid.any():
        raise NoCoverage(f"{src.name} has only nodata over the request")
    return data, valid


def default_rgb_bands(src: rasterio.DatasetReader) -> list[int]:
    """The bands the file labels red, green, blue; else the first three (or one, three times)."""
    interp = [ci.name for ci in src.colorinterp]
    if all(c in interp for c in ("red", "green", "blue")):
        return [interp.index(c) + 1 for c in ("red", "green", "blue")]
    return [1, 2, 3] if src.count >= 3 else [1, 1, 1]
