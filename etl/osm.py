"""Areas of multipolygon relations from a PBF file, as Arrow record batches.

Way lines and closed-way polygons are built in SQL from node coordinates (sql/00_ingest.sql):
DuckDB's joins are the fastest way there. Assembling a relation's rings from member ways is
what libosmium's C++ area assembler does well, so pyosmium builds those and nothing else: the
location index and the assembly run in C++, and only the relations' areas reach Python.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import osmium
import pyarrow as pa
from osmium.filter import EntityFilter, IdFilter, TagFilter
from osmium.osm import AREA, NODE, RELATION, WAY, mutable

AREA_SCHEMA = pa.schema(
    [
        ("osm_id", pa.int64()),  # the relation's id
        ("wkb_hex", pa.string()),
        ("error", pa.string()),  # why no geometry could be built (wkb_hex is then null)
    ]
)

# flex_mem keeps a sparse index for small extracts and switches to a dense array once node ids get
# dense (country or planet files); memory is then bounded by the highest node id, not the number
# of objects. Pass "dense_file_array,<path>" to keep the index on disk for a planet on a small box.
DEFAULT_LOCATION_INDEX = "flex_mem"
WORKER_ABOVE_BYTES = 32 * 2**20
# libosmium's id filter is a dense bitmap: 512 KiB for every 2**22 ids that hold a member way.
# Member ways spread over a wide id range (eight id-shifted copies of an extract: 1.1 GiB) go
# unfiltered instead; the area manager then also assembles the closed ways, in C++, for nothing.
ID_FILTER_CHUNK_BITS, ID_FILTER_CHUNK_BYTES = 22, 2**19
ID_FILTER_MAX_BYTES = 256 * 2**20


def relation_areas(
    path: Path, batch_rows: int = 4_096, location_index: str = DEFAULT_LOCATION_INDEX
) -> Iterator[pa.RecordBatch]:
    """Yield batches of AREA_SCHEMA, one row per multipolygon or boundary relation of the file
    that libosmium assembled (one that it could not assemble yields nothing).

    libosmium's two passes, with filters in C++ that keep the work to those relations: the
    relation pass notes them and their member ways; in the node and way pass only member ways
    reach the location and area handlers (libosmium would otherwise assemble every closed way
    too), and only the relations' areas (ids 2 * r + 1) reach Python."""
    manager = osmium.area.AreaManager()
    members = _AreaMembers()
    with osmium.io.Reader(str(path), RELATION) as reader:
        osmium.apply(reader, TagFilter(*AREA_TYPES), manager.first_pass_handler(), members)
    if not members.relations:
        return
    locations = osmium.NodeLocationsForWays(osmium.index.create_map(location_index))
    locations.ignore_errors()
    areas_only = [EntityFilter(AREA), IdFilter([2 * r + 1 for r in members.relations])]
    buffer = osmium.BufferIterator(*areas_only)
    # The iterator keeps no references to its handlers: this list keeps them alive.
    ways = [IdFilter(members.ways).enable_for(WAY)] if _id_filter_bytes(members.ways) <= \
        ID_FILTER_MAX_BYTES else []
    chain = [*ways, locations, manager.second_pass_to_buffer(buffer), *areas_only]
    wkb = osmium.geom.WKBFactory()
    rows: list[tuple[int, str | None, str | None]] = []
    with osmium.io.Reader(str(path), NODE | WAY) as reader:
        for _ in osmium.OsmFileIterator(reader, *chain):
            pass  # areas only arrive through the buffer
        for area in buffer:
            try:
                rows.append((area.orig_id(), wkb.create_multipolygon(area), None))
            except (osmium.InvalidLocationError, RuntimeError) as e:
                rows.append((area.orig_id(), None, str(e) or type(e).__name__))
            if len(rows) >= batch_rows:
                yield _batch(rows)
                rows = []
    yield _batch(rows)


AREA_TYPES = (("type", "multipolygon"), ("type", "boundary"))


def _id_filter_bytes(ids: set[int]) -> int:
    """What libosmium's IdFilter of `ids` would hold in memory."""
    return len({i >> ID_FILTER_CHUNK_BITS for i in ids}) * ID_FILTER_CHUNK_BYTES


class _AreaMembers(osmium.SimpleHandler):
    """The relations the area manager assembles, and the ways they are made of."""

    def __init__(self) -> None:
        super().__init__()
        self.relations: list[int] = []
        self.ways: set[int] = set()

    def relation(self, relation: osmium.osm.Relation) -> None:
        self.relations.append(relation.id)
        self.ways.update(m.ref for m in relation.members if m.type == "w")


def _batch(rows: list[tuple]) -> pa.RecordBatch:
    columns = zip(*rows) if rows else ((), (), ())
    return pa.RecordBatch.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(columns, AREA_SCHEMA)], schema=AREA_SCHEMA)


@contextmanager
def relation_areas_in_background(path: Path, location_index: str = DEFAULT_LOCATION_INDEX
                                 ) -> Iterator[Callable[[], pa.Table]]:
    """Start relation_areas in a worker process; yields a function that waits for it and
    returns its table (memory-mapped from an Arrow file, so a planet's areas need not fit in
    memory). A process, not a thread: pyosmium holds the GIL while it reads, which would stall
    the DuckDB work meant to run beside it. Leaving the block stops the worker. A file under
    WORKER_ABOVE_BYTES is read at once in this process instead: starting a worker (about 0.6 s
    of imports) costs more than it saves."""
    if path.stat().st_size < WORKER_ABOVE_BYTES:
        batches = relation_areas(path, location_index=location_index)
        table = pa.Table.from_batches(list(batches), schema=AREA_SCHEMA)
        yield lambda: table
        return
    with tempfile.TemporaryDirectory(prefix="skyscript-areas-") as folder:
        target = Path(folder) / "areas.arrow"
        worker = subprocess.Popen(
            [sys.executable, "-m", __name__, str(path), str(target), location_index],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

        def result() -> pa.Table:
            _, errors = worker.communicate()
            if worker.returncode:
                # The worker's last line is its exception, e.g. a damaged file's RuntimeError.
                raise RuntimeError(errors.strip().splitlines()[-1] if errors.strip()
                                   else f"relation areas: worker exited {worker.returncode}")
            return pa.ipc.open_file(pa.memory_map(str(target))).read_all()

        try:
            yield result
        finally:
            if worker.poll() is None:
                worker.kill()
            worker.wait()


def write_relation_areas(path: Path, target: Path, location_index: str) -> None:
    """relation_areas(path) into the Arrow IPC file `target`."""
    with pa.OSFile(str(target), "wb") as sink, pa.ipc.new_file(sink, AREA_SCHEMA) as writer:
        for batch in relation_areas(path, location_index=location_index):
            writer.write_batch(batch)


def write_extract(target: Path, sections: Iterable[tuple[str, pa.RecordBatchReader]]) -> None:
    """A PBF file of the ("nodes", id/lon/lat), ("ways", id/refs) and ("relations",
    osm_id/tags/refs/roles: way members) rows of `sections`, taken in that order (each
    reader is read through before the next is asked for)."""
    add = {"nodes": lambda w, r: w.add_node(mutable.Node(id=r["id"],
                                                         location=(r["lon"], r["lat"]))),
           "ways": lambda w, r: w.add_way(mutable.Way(id=r["id"], nodes=r["refs"])),
           "relations": lambda w, r: w.add_relation(mutable.Relation(
               id=r["osm_id"], tags=dict(r["tags"]),
               members=[("w", ref, role) for ref, role in zip(r["refs"], r["roles"])]))}
    with osmium.SimpleWriter(str(target)) as writer:
        for kind, reader in sections:
            for batch in reader:
                for row in batch.to_pylist():
                    add[kind](writer, row)


def versions(path: Path, wanted: set[tuple[str, int]]) -> pa.Table:
    """(osm_type, osm_id, version) of the `wanted` elements of a file: libosmium's id filter
    drops every other element in C++, so only these few reach Python."""
    processor = osmium.FileProcessor(str(path)).with_filter(
        osmium.filter.IdFilter({osm_id for _, osm_id in wanted}))
    rows = [(kind, obj.id, obj.version) for obj in processor
            if (kind := _TYPES.get(obj.type_str())) and (kind, obj.id) in wanted]
    types, ids, numbers = zip(*rows) if rows else ((), (), ())
    return pa.table({"osm_type": pa.array(types, pa.string()), "osm_id": pa.array(ids, pa.int64()),
                     "version": pa.array(numbers, pa.int64())})


_TYPES = {"n": "node", "w": "way", "r": "relation"}


def read_header(path: Path) -> dict[str, str]:
    """The PBF header: bounding box, generator and replication timestamp, where present."""
    reader = osmium.io.Reader(str(path), osmium.osm.osm_entity_bits.NOTHING)
    try:
        header = reader.header()
        box = header.box()
        info = {
            "pbf_generator": header.get("generator"),
            "pbf_timestamp": header.get("osmosis_replication_timestamp"),
            "pbf_bbox": str(box) if box.valid() else "",
        }
    finally:
        reader.close()
    return {k: v for k, v in info.items() if v}


if __name__ == "__main__":  # the worker of relation_areas_in_background
    write_relation_areas(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
