"""Commands that register imagery: local rasters and STAC catalogs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from skyscript_db.cli.common import DbOption, say
from skyscript_db.db import DEFAULT_DB, connect
from skyscript_db.errors import ConfigError
from skyscript_db.etl import register as registry


def _bands(value: Optional[str]) -> Optional[list[int]]:
    try:
        return [int(b) for b in value.split(",")] if value else None
    except ValueError as e:
        raise ConfigError(f"--bands {value!r}: give band numbers like 3,2,1") from e


def _stretch(value: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value.split(","))
    except ValueError as e:
        raise ConfigError(f"--stretch {value!r}: give two numbers LOW,HIGH like 0,3000") from e
    return low, high


def add_imagery(
    paths: Annotated[list[Path], typer.Argument(help="GeoTIFF/COG files, any CRS.")],
    db: DbOption = DEFAULT_DB,
    code: Annotated[Optional[str], typer.Option(help="Collection code (one file only); default "
                                                     "LOCAL_<FILE STEM>.")] = None,
    bands: Annotated[Optional[str], typer.Option(help="RGB band numbers, e.g. 3,2,1 (default: "
                                                      "the file's colour bands, else 1,2,3).")]
    = None,
) -> None:
    """Register local rasters as imagery collections (real footprint, CRS and GSD)."""
    with connect(db) as con:
        for info in registry.add_imagery(con, paths, code, _bands(bands)):
            say(f"{info.code}: {info.crs}, GSD {info.gsd_m:g} m, {info.bands} bands "
                f"{info.dtype}, RGB {info.rgb_bands} — {info.path}")


def add_stac(
    url: Annotated[str, typer.Argument(help="STAC API root, or a static catalog/collection JSON.")],
    code: Annotated[str, typer.Option(help="Collection code for image_requests and file names.")],
    gsd: Annotated[float, typer.Option(help="Ground sample distance of the imagery, metres.")],
    db: DbOption = DEFAULT_DB,
    collection: Annotated[Optional[str], typer.Option(help="STAC collection id.")] = None,
    assets: Annotated[str, typer.Option(help="One asset with the RGB bands, or three single-band "
                                             "assets in R,G,B order.")] = "visual",
    bands: Annotated[str, typer.Option(help="RGB band numbers in a one-asset COG.")] = "1,2,3",
    datetime: Annotated[Optional[str], typer.Option(help="Use items in this window only: "
                                                         "START/END, ISO dates or times, '..' "
                                                         "for an open end.")] = None,
    max_cloud: Annotated[Optional[float], typer.Option(help="Use items with at most this "
                                                            "eo:cloud_cover (percent).")] = None,
    sortby: Annotated[Optional[str], typer.Option(help="Order items are tried in: properties, "
                                                       "'-' for descending (default "
                                                       "eo:cloud_cover,-datetime).")] = None,
    modifier: Annotated[Optional[str], typer.Option(help="Sign asset URLs: "
                                                         "planetary-computer.")] = None,
    option: Annotated[Optional[list[str]], typer.Option(
        help="GDAL option for reading, KEY=VALUE, repeatable (AWS_REQUEST_PAYER=requester, "
             "AWS_NO_SIGN_REQUEST=YES).")] = None,
    stretch: Annotated[Optional[str], typer.Option(
        help="LOW,HIGH: data that is not 8-bit is stretched from these values to 0-255 for "
             "every item (default: per image, 2nd-98th percentile).")] = None,
) -> None:
    """Register a STAC catalog as an imagery collection (read by HTTP range requests); a request
    takes the least cloudy item, then the newest, and the next when one leaves it partly empty."""
    with connect(db) as con:
        registry.add_stac(con, url, code, gsd, collection, assets.split(","), _bands(bands),
                          datetime, max_cloud, sortby, modifier, option or (),
                          _stretch(stretch) if stretch else None)
    say(f"{code}: {url}")


def register(app: typer.Typer) -> None:
    app.command("add-imagery")(add_imagery)
    app.command("add-stac")(add_stac)
