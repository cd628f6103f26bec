"""Which closed ways become polygons, and how relations are treated, on inline OSM data."""

from __future__ import annotations

import pytest

import skyscript_db

from osm_inline import ring, square, write_pbf

CLOSED_WAYS = {
    # way id: (tags, expected kind)
    1: ({"building": "yes"}, "polygon"),
    2: ({"highway": "residential"}, "line"),
    3: ({"highway": "pedestrian", "area": "yes"}, "polygon"),
    4: ({"building": "yes", "area": "no"}, "line"),
    5: ({"natural": "coastline"}, "line"),
    6: ({"natural": "wood"}, "polygon"),
    7: ({"barrier": "fence"}, "line"),
    8: ({"barrier": "hedge"}, "polygon"),
    9: ({"landuse": "grass", "name": "Esplanadi"}, "polygon"),
}


@pytest.fixture(scope="module")
def inline_db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inline")
    nodes: dict[int, tuple] = {}
    ways = []
    for way_id, (tags, _) in CLOSED_WAYS.items():
        first = way_id * 10
        nodes |= square(first, 24.0 + way_id * 0.01, 60.0)
        ways.append((way_id, ring(first), tags))
    # An open way, a tagged node, and an untagged node (which is no object).
    nodes |= {900: (24.5, 60.5), 901: (24.501, 60.5), 902: (24.6, 60.6)}
    ways.append((20, [900, 901], {"highway": "footway"}))
    # A multipolygon of two outer squares (untagged member ways) and a route relation.
    nodes |= square(1000, 25.0, 61.0) | square(1010, 25.01, 61.0)
    ways += [(30, ring(1000), {}), (31, ring(1010), {})]
    # Closed ways whose ring is three points once a repeated one goes (nodes 501 and 502 stand
    # in one place), and an area whose node is missing from the file.
    nodes |= {500: (26.0, 62.0), 501: (26.001, 62.0), 502: (26.001, 62.0)}
    ways += [(50, [500, 501, 502, 500], {"building": "yes"}),
             (51, [500, 501, 502, 500], {"highway": "footway"}),
             (52, [500, 501, 9999, 500], {"building": "yes"})]
    relations = [
        (40, [("w", 30, "outer"), ("w", 31, "outer")], {"type": "multipolygon", "landuse": "forest"}),
        (41, [("w", 20, "")], {"type": "route", "route": "hiking"}),
        (42, [("w", 999, "outer")], {"type": "multipolygon", "building": "yes"}),  # member missing
    ]
    pbf = write_pbf(tmp / "inline.osm.pbf", nodes, ways, relations, node_tags={900: {"amenity": "bench"}})
    db = tmp / "inline.duckdb"
    skyscript_db.build(pbf, db, only="ingest")
    return db


def kinds(db, osm_type):
    with skyscript_db.connect(db, read_only=True) as con:
        return dict(con.execute(
            "select osm_id, kind || ':' || st_geometrytype(geom)::varchar from osm_objects "
            "where osm_type = $t", {"t": osm_type}).fetchall())


def test_closed_ways_follow_area_rules(inline_db):
    way_kinds = kinds(inline_db, "way")
    for way_id, (tags, expected) in CLOSED_WAYS.items():
        geometry = "POLYGON" if expected == "polygon" else "LINESTRING"
        assert way_kinds[way_id] == f"{expected}:{geometry}", tags
    assert way_kinds[20] == "line:LINESTRING"
    assert 30 not in way_kinds and 31 not in way_kinds  # untagged: not objects


def test_nodes_and_relations(inline_db):
    assert kinds(inline_db, "node") == {900: "point:POINT"}
    assert kinds(inline_db, "relation") == {40: "polygon:MULTIPOLYGON"}
    with skyscript_db.connect(inline_db, read_only=True) as con:
        rejects = dict(con.execute(
            "select osm_id, reason from osm_rejects where osm_type = 'relation'").fetchall())
        area = con.execute(
            "select st_area(geom) from osm_objects where osm_type = 'relation'").fetchone()[0]
    assert rejects == {41: "relation type=route has no area geometry",
                       42: "area assembly failed: broken or incomplete rings"}
    assert area == pytest.approx(2 * 0.001 * 0.001)


def test_ways_with_too_few_points_or_a_missing_node(inline_db):
    """An area whose ring has fewer than four points fails as an area; the same ring as a line
    is a line; a missing node leaves a way without any geometry."""
    with skyscript_db.connect(inline_db, read_only=True) as con:
        rejects = dict(con.execute(
            "select osm_id, reason from osm_rejects where osm_type = 'way'").fetchall())
    assert rejects == {50: "area assembly failed: broken or incomplete rings",
                       52: "no geometry: invalid location"}
    assert kinds(inline_db, "way")[51] == "line:LINESTRING"
