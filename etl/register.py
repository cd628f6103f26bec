"""Register imagery as collections: local rasters (add-imagery) and STAC catalogs (add-stac).

Registration only writes the local_imagery / stac_collections tables, all rows or none; the next
build's image_collections stage picks them up (its fingerprint includes them).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from skyscript_db import queries
from skyscript_db.db import has_table
from skyscript_db.errors import ConfigError, InputError
from skyscript_db.etl.stage import transaction

if TYPE_CHECKING:
    from skyscript_db.etl.rasters import RasterInfo

log = logging.getLogger(__name__)


def add_imagery(con: duckdb.DuckDBPyConnection, paths: Sequence[str | Path],
                code: str | None = None, rgb_bands: list[int] | None = None) -> list[RasterInfo]:
    """Register rasters as local collections."""
    # imported here, as in add_stac: rasterio takes 0.1 s to import, which every command using
    # this module (fetch, build) would pay
    from skyscript_db.etl.rasters import read_raster_info

    if code is not None and len(paths) != 1:
        raise InputError("--code names one raster; give one path with it")
    infos = [read_raster_info(p, code, rgb_bands) for p in paths]  # read all before writing
    _register(con, "register_local", [asdict(i) for i in infos])
    for info in infos:
        log.info("registered %s: %s, %s, GSD %.2f m, RGB bands %s", info.code, info.path,
                 info.crs, info.gsd_m, info.rgb_bands)
    return infos


def add_stac(con: duckdb.DuckDBPyConnection, url: str, code: str, gsd_m: float,
             collection: str | None = None, assets: Sequence[str] = ("visual",),
             rgb_bands: Sequence[int] = (1, 2, 3), datetime: str | None = None,
             max_cloud: float | None = None, sortby: str | None = None,
             modifier: str | None = None, options: Sequence[str] = (),
             stretch: tuple[float, float] | None = None) -> dict[str, Any]:
    """Register a STAC catalog or API collection; its footprint is the box around its items
    (static catalogs) or the whole world (APIs: items are searched per request). `datetime`
    and `max_cloud` filter the items a request may use, `sortby` orders them, `modifier` signs
    them, `options` are GDAL options for reading them and `stretch` the values mapped to 0-255
    (StacSource)."""
    from skyscript_db.etl.imagery.stac import gdal_options
    from skyscript_db.etl.imagery.stac_items import (DEFAULT_SORTBY, modifier_function,
                                                     search_items, sort_fields, window)

    if len(assets) not in (1, 3):
        raise InputError(f"{url}: give one asset holding RGB bands or three single-band assets")
    try:
        window(datetime)
        sort_fields(sortby or DEFAULT_SORTBY)
        gdal_options(options)
        modifier_function(modifier)
    except (ValueError, ConfigError) as e:
        raise InputError(f"{url}: {e}") from e
    if stretch is not None and not (len(stretch) == 2 and stretch[0] < stretch[1]):
        raise InputError(f"{url}: stretch is LOW,HIGH with LOW < HIGH, got {stretch}")
    if max_cloud is not None and not 0 <= max_cloud <= 100:
        raise InputError(f"{url}: max_cloud is a percentage (0-100), got {max_cloud}")
    world = (-180.0, -90.0, 180.0, 90.0)
    try:
        boxes = [i.bbox for i in search_items(url, collection, world, modifier=modifier)
                 if i.bbox] \
            if url.endswith(".json") else [world]
    except Exception as e:
        raise InputError(f"{url}: cannot read the STAC catalog ({e})") from e
    if not boxes:
        where = f" in {collection}" if collection else ""
        raise InputError(f"{url}: the catalog has no items{where}")
    w, s = min(b[0] for b in boxes), min(b[1] for b in boxes)
    e, n = max(b[2] for b in boxes), max(b[3] for b in boxes)
    footprint = f"POLYGON (({w} {s}, {e} {s}, {e} {n}, {w} {n}, {w} {s}))"
    row = {"code": code, "url": url, "collection": collection, "assets": list(assets),
           "rgb_bands": list(rgb_bands), "gsd_m": gsd_m, "footprint_wkt": footprint,
           "datetime": datetime, "max_cloud": max_cloud, "sortby": sortby, "modifier": modifier,
           "options": list(options), "stretch": list(stretch) if stretch else None}
    _register(con, "register_stac", [row])
    log.info("registered %s: %s (%d items)", code, url, len(boxes))
    return row


def registered_state(con: duckdb.DuckDBPyConnection) -> list:
    """What is registered, for the image_collections stage's fingerprint."""
    q = queries.load("register_imagery.sql")
    sources = (("local_state", "local_imagery"), ("stac_state", "stac_collections"))
    return [q[name].run(con).fetchall() if has_table(con, table) else [] for name, table in sources]


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The registration tables as this version has them (older databases gain the STAC
    filters' and access settings' columns)."""
    tables = queries.load("50_image_collections.sql")
    for name in ("create_local_imagery", "create_stac_collections", "stac_datetime",
                 "stac_max_cloud", "stac_access"):
        tables[name].run(con)


def _register(con: duckdb.DuckDBPyConnection, section: str, rows: list[dict[str, Any]]) -> None:
    register = queries.load("register_imagery.sql")[section]
    with transaction(con):
        create_tables(con)
        for row in rows:
            register.run(con, **{p: row[p] for p in register.params})
