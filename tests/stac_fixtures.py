"""STAC items over the real COG in ../shared/data/imagery, for the static-catalog and API tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import rasterio
from rasterio.warp import transform_bounds
from rasterio.windows import Window


def cog_and_half(cog: Path, folder: Path) -> list[float]:
    """Copies `cog` into `folder` beside half.tif, its western half only; returns the COG's
    lon/lat bounding box."""
    shutil.copy(cog, folder / cog.name)
    with rasterio.open(folder / cog.name) as src:
        bbox = list(transform_bounds(src.crs, "EPSG:4326", *src.bounds))
        profile = src.profile | {"width": src.width // 2}
        profile.pop("blockxsize", None), profile.pop("blockysize", None), profile.pop("tiled", None)
        with rasterio.open(folder / "half.tif", "w", **profile) as half:
            half.write(src.read(window=Window(0, 0, src.width // 2, src.height)))
    return bbox


def stac_item(name: str, bbox: list[float], day: str, cloud: float, href: str,
              collection: str | None = None) -> dict:
    """A STAC item over `bbox` taken on `day` with `cloud` % cloud cover, its visual asset at
    `href`."""
    west, south, east, north = bbox
    return {"type": "Feature", "stac_version": "1.0.0", "id": name, "bbox": bbox,
            **({"collection": collection} if collection else {}),
            "geometry": {"type": "Polygon", "coordinates": [[
                [west, south], [east, south], [east, north], [west, north], [west, south]]]},
            "properties": {"datetime": f"{day}T10:00:00Z", "eo:cloud_cover": cloud},
            "links": [], "assets": {"visual": {"href": href}}}
