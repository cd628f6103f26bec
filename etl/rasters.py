"""Local rasters: read a GeoTIFF's real footprint (where it has data), CRS and ground sample
distance."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import rasterio
from affine import Affine
from rasterio.enums import MaskFlags
from rasterio.errors import RasterioIOError
from rasterio.features import shapes
from rasterio.warp import transform, transform_geom

from skyscript_db.errors import InputError
from skyscript_db.etl.imagery.raster import default_rgb_bands

# Metres per degree of latitude (WGS 84, mean): converts the pixel size of rasters in geographic
# coordinates to a GSD. Good to a fraction of a percent, which is all a GSD class needs.
METRES_PER_DEGREE = 111_195.0
EDGE_POINTS = 16  # points per footprint edge, so reprojected edges follow the raster's outline
MASK_SIDE = 256  # a raster with nodata is outlined on its mask read at most this many px a side


@dataclass(frozen=True)
class RasterInfo:
    code: str
    path: str
    crs: str
    gsd_m: float
    bands: int
    dtype: str
    footprint_wkt: str
    rgb_bands: list[int]


def default_code(path: Path) -> str:
    """LOCAL_<FILE STEM>, upper case, non-alphanumerics as '_'."""
    return "LOCAL_" + re.sub(r"[^A-Za-z0-9]+", "_", path.stem).strip("_").upper()


def read_raster_info(path: str | Path, code: str | None = None,
                     rgb_bands: list[int] | None = None) -> RasterInfo:
    """Footprint (lon/lat polygon), CRS, GSD and RGB bands of a georeferenced raster."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise InputError(f"{path}: raster has no CRS, so its ground position is unknown")
            left, bottom, right, top = src.bounds
            xs, ys = _outline(left, bottom, right, top)
            lons, lats = transform(src.crs, "EPSG:4326", xs, ys)
            res_x, res_y = src.res
            # The coarser side of a pixel limits what can be seen.
            if src.crs.is_geographic:
                mid_lat = sum(lats) / len(lats)
                gsd = METRES_PER_DEGREE * max(res_y, res_x * math.cos(math.radians(mid_lat)))
            else:
                gsd = max(res_x, res_y) * src.crs.linear_units_factor[1]
            ring = ", ".join(f"{x} {y}" for x, y in zip(lons, lats))
            footprint = _valid_outline(path, src) or f"POLYGON (({ring}))"
            return RasterInfo(
                code=code or default_code(path),
                path=str(path.resolve()),
                crs=src.crs.to_string(),
                gsd_m=round(gsd, 4),
                bands=src.count,
                dtype=src.dtypes[0],
                footprint_wkt=footprint,
                rgb_bands=_check_bands(path, rgb_bands or default_rgb_bands(src), src.count),
            )
    except RasterioIOError as e:
        raise InputError(f"{path}: not a raster GDAL can read ({e})") from e


def _valid_outline(path: Path, src: rasterio.DatasetReader) -> str | None:
    """Where a raster with nodata or a mask has pixels, as a lon/lat MULTIPOLYGON (WKT) traced on
    its mask read at MASK_SIDE pixels a side at most; None when every pixel is valid (its edge
    outline is then exact)."""
    if all(MaskFlags.all_valid in flags for flags in src.mask_flag_enums):
        return None
    scale = max(1.0, max(src.width, src.height) / MASK_SIDE)
    height, width = math.ceil(src.height / scale), math.ceil(src.width / scale)
    mask = src.dataset_mask(out_shape=(height, width))
    if mask.all():
        return None
    if not mask.any():
        raise InputError(f"{path}: every pixel is nodata or masked")
    grid = src.transform @ Affine.scale(src.width / width, src.height / height)
    polygons = [transform_geom(src.crs, "EPSG:4326", geometry)["coordinates"]
                for geometry, _ in shapes(mask, mask=mask > 0, transform=grid)]
    return "MULTIPOLYGON (" + ", ".join(
        "(" + ", ".join("(" + ", ".join(f"{x} {y}" for x, y in ring) + ")" for ring in rings)
        + ")" for rings in polygons) + ")"


def _check_bands(path: Path, bands: list[int], count: int) -> list[int]:
    if len(bands) != 3 or not all(1 <= b <= count for b in bands):
        raise InputError(f"{path}: RGB bands must be three band numbers in 1..{count}, got {bands}")
    return bands


def _outline(left: float, bottom: float, right: float, top: float) -> tuple[list, list]:
    """A closed ring along the raster's edges, EDGE_POINTS points per edge."""
    steps = [i / EDGE_POINTS for i in range(EDGE_POINTS)]
    xs = ([left + (right - left) * t for t in steps] + [right] * EDGE_POINTS
          + [right - (right - left) * t for t in steps] + [left] * EDGE_POINTS)
    ys = ([bottom] * EDGE_POINTS + [bottom + (top - bottom) * t for t in steps]
          + [top] * EDGE_POINTS + [top - (top - bottom) * t for t in steps])
    return xs + xs[:1], ys + ys[:1]
