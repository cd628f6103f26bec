"""The render source: a SYNTHETIC stand-in for imagery, drawn from the OSM objects themselves.

It exists so that the default database has images offline. Nothing it draws was ever seen from
above: collections it serves are named SYNTH_*, and so are their files. Features come from SQL
(sql/80_fetch.sql, section render_features) already in pixel coordinates, styled by the seed
render_styles.csv; this module only paints them, bottom layer first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from skyscript_db.etl.imagery.base import Fetched, ImageRequest

BACKGROUND = "#d9d4c7"


@dataclass(frozen=True)
class Feature:
    layer: int
    colour: str
    width_px: float
    geojson: str  # geometry in pixel coordinates (x right, y down)


@dataclass(frozen=True)
class RenderSource:
    name: str = "render"

    def check(self) -> None:
        """Nothing to check: it draws from the database."""

    def fetch(self, request: ImageRequest, payload: Any = None) -> Fetched:
        image = Image.new("RGB", (request.width_px, request.height_px), BACKGROUND)
        draw = ImageDraw.Draw(image)
        features: list[Feature] = payload or []
        for feature in sorted(features, key=lambda f: f.layer):
            _paint(draw, json.loads(feature.geojson), feature.colour, feature.width_px)
        return Fetched(np.asarray(image), source=self.name,
                       meta={"synthetic": True, "features": len(features)})


def _paint(draw: ImageDraw.ImageDraw, geometry: dict, colour: str, width_px: float) -> None:
    kind, coords = geometry["type"], geometry.get("coordinates")
    width = max(1, round(width_px))
    if kind != "GeometryCollection" and not coords:
        return
    if kind == "Point":
        r = max(1.0, width_px / 2)
        x, y = coords
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    elif kind == "LineString" and len(coords) >= 2:
        draw.line([tuple(p) for p in coords], fill=colour, width=width, joint="curve")
    elif kind == "Polygon":
        _polygon(draw, coords, colour)
    elif kind.startswith("Multi"):
        for part in coords:
            _paint(draw, {"type": kind[5:], "coordinates": part}, colour, width_px)
    elif kind == "GeometryCollection":
        for part in geometry["geometries"]:
            _paint(draw, part, colour, width_px)


def _polygon(draw: ImageDraw.ImageDraw, rings: list, colour: str) -> None:
    exterior, *holes = rings
    if len(exterior) >= 3:
        draw.polygon([tuple(p) for p in exterior], fill=colour)
    for hole in holes:  # holes show what lies below as plain ground
        if len(hole) >= 3:
            draw.polygon([tuple(p) for p in hole], fill=BACKGROUND)
