"""Tiny OSM files written inline, the way pyosmium's own tests build theirs."""

from __future__ import annotations

from pathlib import Path

import osmium
from osmium.osm.mutable import Node, Relation, Way


def write_pbf(path: Path, nodes: dict[int, tuple[float, float]], ways: list[tuple],
              relations: list[tuple] = (), node_tags: dict[int, dict] | None = None,
              versions: dict[tuple[str, int], int] | None = None) -> Path:
    """nodes: id -> (lon, lat); ways: (id, [node ids], tags); relations: (id, [(type, id, role)], tags);
    versions: ('n' | 'w' | 'r', id) -> version (default 1)."""
    node_tags = node_tags or {}
    versions = versions or {}
    with osmium.SimpleWriter(str(path)) as writer:
        for node_id, (lon, lat) in sorted(nodes.items()):
            writer.add_node(Node(id=node_id, location=(lon, lat), tags=node_tags.get(node_id, {}),
                                 version=versions.get(("n", node_id), 1)))
        for way_id, refs, tags in ways:
            writer.add_way(Way(id=way_id, nodes=refs, tags=tags,
                               version=versions.get(("w", way_id), 1)))
        for rel_id, members, tags in relations:
            writer.add_relation(Relation(id=rel_id, members=members, tags=tags,
                                         version=versions.get(("r", rel_id), 1)))
    return path


def square(first_id: int, lon: float, lat: float, size: float = 0.001) -> dict[int, tuple]:
    """Four corner nodes, numbered from first_id, counter-clockwise."""
    corners = [(lon, lat), (lon + size, lat), (lon + size, lat + size), (lon, lat + size)]
    return {first_id + i: corner for i, corner in enumerate(corners)}


def ring(first_id: int) -> list[int]:
    return [first_id, first_id + 1, first_id + 2, first_id + 3, first_id]


def town(path: Path, blocks: int = 6, origin: tuple[float, float] = (24.930, 60.160)) -> Path:
    """A small made-up town near Helsinki, written inline: a grid of `blocks` x `blocks` blocks
    0.004° apart (so it spans several 0.01° grid cells) with buildings, streets, driveways,
    parking lots, tennis courts, parks, trees, benches, a water tower, a multipolygon building
    with a courtyard, and invisible tags (names, addresses) on many of them."""
    lon0, lat0 = origin
    step = 0.004
    nodes: dict[int, tuple[float, float]] = {}
    node_tags: dict[int, dict] = {}
    ways: list[tuple] = []
    next_id = iter(range(1, 10**6))
    kinds = [
        {"building": "yes"}, {"building": "residential", "building:levels": "3"},
        {"amenity": "parking", "surface": "asphalt"}, {"leisure": "pitch", "sport": "tennis"},
        {"leisure": "park", "name": "Puisto"}, {"building": "school", "name": "Koulu"},
    ]
    for i in range(blocks):
        for j in range(blocks):
            lon, lat = lon0 + i * step, lat0 + j * step
            first = next(next_id) * 10
            nodes |= square(first, lon, lat, size=step * 0.6)
            tags = dict(kinds[(i * blocks + j) % len(kinds)])
            tags["addr:housenumber"] = str(i * blocks + j + 1)
            ways.append((next(next_id), ring(first), tags))
            tree = next(next_id) * 10
            nodes[tree] = (lon + step * 0.8, lat + step * 0.8)
            node_tags[tree] = {"natural": "tree"} if (i + j) % 3 else {"amenity": "bench"}
    for i in range(blocks + 1):  # streets between the blocks, both ways
        for horizontal in (True, False):
            refs = []
            for j in range(blocks + 1):
                node = next(next_id) * 10
                lon = lon0 + (j if horizontal else i) * step - step * 0.2
                lat = lat0 + (i if horizontal else j) * step - step * 0.2
                nodes[node] = (lon, lat)
                refs.append(node)
            highway = "residential" if i % 2 else "service"
            tags = {"highway": highway, "name": f"Katu {i}"}
            if highway == "service":
                tags["service"] = "driveway"
            ways.append((next(next_id), refs, tags))
    tower = next(next_id) * 10
    nodes[tower] = (lon0 - step, lat0 - step)
    node_tags[tower] = {"man_made": "water_tower", "name": "Vesitorni"}
    outer, inner = next(next_id) * 10, next(next_id) * 10
    nodes |= square(outer, lon0 - 3 * step, lat0, size=step)
    nodes |= square(inner, lon0 - 2.7 * step, lat0 + 0.3 * step, size=step * 0.4)
    outer_way, inner_way = next(next_id), next(next_id)
    ways += [(outer_way, ring(outer), {}), (inner_way, ring(inner), {})]
    relations = [(next(next_id), [("w", outer_way, "outer"), ("w", inner_way, "inner")],
                  {"type": "multipolygon", "building": "university", "name": "Yliopisto"})]
    return write_pbf(path, nodes, ways, relations, node_tags)
