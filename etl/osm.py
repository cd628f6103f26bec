"""Geometries of tagged ways and areas from a PBF file, as Arrow record batches.

pyosmium does what C++ does best: the node location index, the area (multipolygon) assembler and
WKB building. Untagged elements and all nodes are filtered in C++ and never reach Python; tags never
cross into Python either (DuckDB's ST_ReadOSM reads them far faster, see sql/00_ingest.sql). Each
object that reaches Python costs one WKB call and a few list appends.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import osmium
import pyarrow as pa
from osmium.filter import EmptyTagFilter, EntityFilter
from osmium.osm import AREA, WAY

GEOMETRY_SCHEMA = pa.schema(
    [
        ("source", pa.string()),  # 'line' (a way itself) | 'area' (an assembled polygon)
        # A way id for lines; for areas libosmium's area id: 2 * way id, or 2 * relation id + 1.
        ("id", pa.int64()),
        ("wkb_hex", pa.string()),
        ("error", pa.string()),  # why no geometry could be built (wkb_hex is then null)
    ]
)

# flex_mem keeps a sparse index for small extracts and switches to a dense array once node ids get
# dense (country or planet files); memory is then bounded by the highest node id, not the number
# of objects. Pass "dense_file_array,<path>" to keep the index on disk for a planet on a small box.
DEFAULT_LOCATION_INDEX = "flex_mem"


def geometry_batches(
    path: Path,
    batch_rows: int = 16_384,
    location_index: str = DEFAULT_LOCATION_INDEX,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield batches of GEOMETRY_SCHEMA for every tagged way and every assembled area.

    Closed ways yield two rows, a line and an area; which one an object keeps is a tag rule
    decided in SQL. A way whose nodes lie outside a clipped extract yields a row with `error` set.
    The loop is the hot path: per object one WKB call and two appends, nothing else.
    """
    wkb = osmium.geom.WKBFactory()
    processor = (
        osmium.FileProcessor(str(path))
        .with_locations(location_index)
        .with_areas()
        .with_filter(EmptyTagFilter())
        .with_filter(EntityFilter(WAY | AREA))
    )
    lines = _Rows("line", wkb.create_linestring)
    areas = _Rows("area", wkb.create_multipolygon)
    for obj in processor:
        rows = areas if obj.is_area() else lines
        try:
            rows.geoms.append(rows.build(obj))
            rows.ids.append(obj.id)
        except (osmium.InvalidLocationError, RuntimeError) as e:
            rows.failed.append((obj.id, str(e) or type(e).__name__))
        if len(lines.ids) + len(areas.ids) >= batch_rows:
            yield _batch(lines, areas, on_progress)
    yield _batch(lines, areas, on_progress)


class _Rows:
    """Column lists for one source; emptied by each batch."""

    def __init__(self, source: str, build: Callable) -> None:
        self.source, self.build = source, build
        self.ids: list[int] = []
        self.geoms: list[str] = []
        self.failed: list[tuple[int, str]] = []

    def take(self) -> tuple[list, list, list, list]:
        n_ok, n_failed = len(self.ids), len(self.failed)
        columns = ([self.source] * (n_ok + n_failed),
                   self.ids + [i for i, _ in self.failed],
                   self.geoms + [None] * n_failed,
                   [None] * n_ok + [e for _, e in self.failed])
        self.ids, self.geoms, self.failed = [], [], []
        return columns


def _batch(lines: _Rows, areas: _Rows,
           on_progress: Callable[[int], None] | None) -> pa.RecordBatch:
    parts = lines.take(), areas.take()
    arrays = [pa.array(a + b, type=field.type) for a, b, field in zip(*parts, GEOMETRY_SCHEMA)]
    batch = pa.RecordBatch.from_arrays(arrays, schema=GEOMETRY_SCHEMA)
    if on_progress:
        on_progress(batch.num_rows)
    return batch


class GeometryStream:
    """geometry_batches running in a background thread, a few batches ahead of its consumer.

    pyosmium starts at once, so it builds geometries while DuckDB (which releases the GIL) reads
    tags or processes earlier batches. Use as a context manager: leaving it stops the thread.
    `reader` is the Arrow stream for DuckDB; errors of the thread re-raise in the consumer.
    """

    def __init__(self, path: Path, depth: int = 8, **kwargs) -> None:
        self._slots: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(path, kwargs),
                                        name="pyosmium", daemon=True)
        self._thread.start()
        self.reader = pa.RecordBatchReader.from_batches(GEOMETRY_SCHEMA, self._consume())

    def __enter__(self) -> "GeometryStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _put(self, item: tuple[str, object]) -> None:
        while not self._stop.is_set():
            try:
                self._slots.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def _produce(self, path: Path, kwargs: dict) -> None:
        try:
            for batch in geometry_batches(path, **kwargs):
                if self._stop.is_set():
                    return
                self._put(("batch", batch))
            self._put(("end", None))
        except BaseException as e:  # handed to the consumer, which raises it
            self._put(("error", e))

    def _consume(self) -> Iterator[pa.RecordBatch]:
        while True:
            kind, value = self._slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value


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
