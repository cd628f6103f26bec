"""Tiny OSM files written inline, the way pyosmium's own tests build theirs."""

from __future__ import annotations

from pathlib import Path

import osmium
from osmium.osm.mutable import Node, Relation, Way


def write_pbf(path: Path, nodes: dict[int, tuple[float, float]], ways: list[tuple],
              relations: list[tuple] = (), node_tags: dict[int, dict] | None = None) -> Path:
    """nodes: id -> (lon, lat); ways: (id, [node ids], tags); relations: (id, [(type, id, role)], tags)."""
    node_tags = node_tags or {}
    with osmium.SimpleWriter(str(path)) as writer:
        for node_id, (lon, lat) in sorted(nodes.items()):
            writer.add_node(Node(id=node_id, location=(lon, lat), tags=node_tags.get(node_id, {}),
                                 version=1))
        for way_id, refs, tags in ways:
            writer.add_way(Way(id=way_id, nodes=refs, tags=tags, version=1))
        for rel_id, members, tags in relations:
            writer.add_relation(Relation(id=rel_id, members=members, tags=tags, version=1))
    return path


def square(first_id: int, lon: float, lat: float, size: float = 0.001) -> dict[int, tuple]:
    """Four corner nodes, numbered from first_id, counter-clockwise."""
    corners = [(lon, lat), (lon + size, lat), (lon + size, lat + size), (lon, lat + size)]
    return {first_id + i: corner for i, corner in enumerate(corners)}


def ring(first_id: int) -> list[int]:
    return [first_id, first_id + 1, first_id + 2, first_id + 3, first_id]
