"""Bigger inputs for the benchmarks: a PBF followed by shifted copies of itself.

Copy k has every id offset by k * ID_OFFSET (above every real OSM id) and every longitude shifted
by k * SHIFT_DEG, so the copies are new objects in new places with the same shapes and tags.
"""

from __future__ import annotations

from pathlib import Path

import osmium
from osmium.osm import NODE, RELATION, WAY
from osmium.osm.mutable import Node, Relation, Way

ID_OFFSET = 100_000_000_000
SHIFT_DEG = 1.0


def write_copies(source: Path, target: Path, copies: int) -> Path:
    """source and copies - 1 shifted copies, type by type (a PBF holds nodes, then ways, then
    relations)."""
    with osmium.SimpleWriter(str(target)) as writer:
        for entity in (NODE, WAY, RELATION):
            for k in range(copies):
                for obj in osmium.FileProcessor(str(source), entity):
                    writer.add(_copy(obj, k) if k else obj)
    return target


def _copy(obj, k: int):
    offset = k * ID_OFFSET
    if obj.is_node():
        loc = obj.location
        return Node(base=obj, id=obj.id + offset, location=(loc.lon + k * SHIFT_DEG, loc.lat))
    if obj.is_way():
        return Way(base=obj, id=obj.id + offset, nodes=[n.ref + offset for n in obj.nodes])
    members = [(m.type, m.ref + offset, m.role) for m in obj.members]
    return Relation(base=obj, id=obj.id + offset, members=members)
