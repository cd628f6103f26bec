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
        ("osm_type", pa.string()),  # 'way' | 'relation'
        ("osm_id", pa.int64()),
        ("source", pa.string()),  # 'line' (the way itself) | 'area' (assembled polygon)
        ("wkb_hex", pa.string()),
        ("error", pa.string()),  # why no geometry could be built
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
    """
    wkb = osmium.geom.WKBFactory()
    make_line, make_area = wkb.create_linestring, wkb.create_multipolygon
    processor = (
        osmium.FileProcessor(str(path))
        .with_locations(location_index)
        .with_areas()
        .with_filter(EmptyTagFilter())
        .with_filter(EntityFilter(WAY | AREA))
    )
    columns: tuple[list, ...] = ([], [], [], [], [])
    types, ids, sources, geoms, errors = columns
    for obj in processor:
        if obj.is_area():
            types.append("way" if obj.from_way() else "relation")
            ids.append(obj.orig_id())
            sources.append("area")
            build = make_area
        else:
            types.append("way")
            ids.append(obj.id)
            sources.append("line")
            build = make_line
        try:
            geoms.append(build(obj))
            errors.append(None)
        except (osmium.InvalidLocationError, RuntimeError) as e:
            geoms.append(None)
            errors.append(str(e) or type(e).__name__)
        if len(ids) >= batch_rows:
            yield _batch(columns)
            if on_progress:
                on_progress(len(ids))
            for column in columns:
                column.clear()
    if ids:
        yield _batch(columns)
        if on_progress:
            on_progress(len(ids))


def _batch(columns: tuple[list, ...]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(columns, GEOMETRY_SCHEMA)],
        schema=GEOMETRY_SCHEMA,
    )


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
