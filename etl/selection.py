"""What part of the extracts ingest keeps: the clip area and the tag filter (QuackOSM's rules),
turned from what a user types into what sql/00_ingest.sql binds: WKT with its bounding box, and
rows of LIKE patterns. Bad input is a ConfigError naming the part that is wrong."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from skyscript_db import queries
from skyscript_db.db import connect
from skyscript_db.errors import ConfigError


@dataclass(frozen=True)
class Clip:
    wkt: str
    west: float
    south: float
    east: float
    north: float


def clip_area(text: str) -> Clip:
    """'W,S,E,N', WKT, GeoJSON, or a file holding WKT or GeoJSON, as a polygonal area."""
    source = text
    if len(text) < 4096 and Path(text).is_file():
        source, text = f"{text} (file)", Path(text).read_text()
    return _parse_clip(source, text)


@cache  # ingest asks several times per build (check, fingerprint, read, build_info)
def _parse_clip(source: str, text: str) -> Clip:
    parts = text.split(",")
    if len(parts) == 4 and not text.lstrip().startswith(("{", "POLYGON", "MULTIPOLYGON")):
        text = _bbox_wkt(source, parts)
    q = queries.load("00_ingest.sql")
    with connect(None) as con:
        try:
            geojson = text.lstrip().startswith("{")
            row = q["clip_area"].row(con, wkt=None if geojson else text,
                                     geojson=_geojson_geometries(source, text) if geojson else [])
        except duckdb.Error as e:  # DuckDB's parse errors, as one line naming the input
            raise ConfigError(f"clip {_short(source)}: not WKT, GeoJSON or W,S,E,N "
                              f"({str(e).strip().splitlines()[0]})") from e
    wkt, kind, valid = row["wkt"], row["kind"], row["valid"]
    if kind not in ("POLYGON", "MULTIPOLYGON"):
        raise ConfigError(f"clip {_short(source)}: a {kind}, not an area (Polygon or "
                          "MultiPolygon)")
    if not valid:
        raise ConfigError(f"clip {_short(source)}: the polygon is not valid (self-intersecting "
                          "or badly closed rings)")
    return Clip(wkt, row["west"], row["south"], row["east"], row["north"])


def _bbox_wkt(source: str, parts: list[str]) -> str:
    try:
        west, south, east, north = (float(p) for p in parts)
    except ValueError as e:
        raise ConfigError(f"--bbox {source!r}: give four numbers W,S,E,N in degrees") from e
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise ConfigError(f"--bbox {source!r}: need -180 <= W < E <= 180 and "
                          "-90 <= S < N <= 90")
    return (f"POLYGON(({west} {south}, {east} {south}, {east} {north}, {west} {north}, "
            f"{west} {south}))")


def _geojson_geometries(source: str, text: str) -> list[str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"clip {_short(source)}: not valid JSON ({e})") from e
    features = data.get("features") if data.get("type") == "FeatureCollection" else [data]
    geometries = [f.get("geometry") if f.get("type") == "Feature" else f for f in features or []]
    if not geometries or any(not isinstance(g, dict) for g in geometries):
        raise ConfigError(f"clip {_short(source)}: GeoJSON without a geometry")
    return [json.dumps(g) for g in geometries]


def _short(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


@dataclass(frozen=True)
class TagRule:
    """One entry of a tag filter as SQL LIKE patterns (escape character '\\'); value None: any
    value; keep False: a negative entry."""

    key_like: str
    value_like: str | None
    keep: bool


def tag_rules(tags_filter: str) -> list[TagRule]:
    """QuackOSM's tag filter (JSON text) as rules.

    >>> [(r.key_like, r.value_like, r.keep) for r in tag_rules('{"addr:*": false, "shop": "*"}')]
    [('addr:%', None, False), ('shop', '%', True)]
    """
    try:
        data = json.loads(tags_filter)
    except json.JSONDecodeError as e:
        raise ConfigError(f"--tags-filter: not valid JSON ({e})") from e
    if not isinstance(data, dict) or not data:
        raise ConfigError("--tags-filter: give a JSON object of OSM keys, e.g. "
                          '{"building": true, "amenity": ["parking", "school"], "highway": false}')
    if all(isinstance(v, dict) for v in data.values()):
        raise ConfigError("--tags-filter: grouped filters (QuackOSM's named groups) are not "
                          "supported; give one flat object of keys")
    return [rule for key, value in data.items() for rule in _entry(key, value)]


def _entry(key: str, value: Any) -> list[TagRule]:
    if not key:
        raise ConfigError("--tags-filter: an empty key")
    pattern = _like(key)
    if isinstance(value, bool):
        return [TagRule(pattern, None, value)]
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"--tags-filter: {key!r}: {json.dumps(value)} is not true, false, a "
                          "value or a list of values")
    return [TagRule(pattern, _like(v), True) for v in values]


def _like(glob: str) -> str:
    """A glob with '*' as a LIKE pattern: LIKE's own wildcards are escaped."""
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")
