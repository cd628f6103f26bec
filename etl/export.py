"""Export the kept pairs for training: OpenCLIP CSVs and WebDataset tar shards, per split.

SQL (sql/95_export.sql) chooses the pairs and their geographic split; this module streams them,
page by page, into files. Output is deterministic (pair_id order, fixed tar headers, sorted JSON
keys): the same database and options give byte-identical files. Everything is written into
`<out>.partial` and moved into place at the end, so a failed export leaves the previous one.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from skyscript_db import queries
from skyscript_db.errors import SkyscriptError
from skyscript_db.readonly import check_read_only
from skyscript_db.sql_stages import create_macros
from skyscript_db.stages import has_table

log = logging.getLogger(__name__)

SQL = "95_export.sql"
SPLITS = ("train", "validation", "test")
# The columns of the released SkyScript CSVs first, then where the pair comes from.
CSV_COLUMNS = ("filepath", "title", "title_multi_objects", "similarity_title",
               "similarity_title_multi_objects", "similarity_rank_pct", "pair_id",
               "collection_code", "cell_id", "block_id", "split")
PAGE = 2000


class ExportError(SkyscriptError):
    """The export cannot run as asked."""


@dataclass(frozen=True)
class ExportConfig:
    """top_pct: keep pairs ranked in the top this many percent by similarity (100 = all).
    collection: only this collection code. where: a read-only SQL predicate over `pairs`.
    fractions: train, validation, test shares of the blocks. block_cells: a block's side, in
    0.01° grid cells. shard_size: samples per tar shard. seed: the split draw."""

    top_pct: float = 100.0
    collection: str | None = None
    where: str | None = None
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    block_cells: int = 10
    shard_size: int = 1000
    seed: int = 0
    webdataset: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.top_pct <= 100:
            raise ExportError(f"top_pct must be in (0, 100], got {self.top_pct}")
        shares = self.fractions
        if len(shares) != 3 or min(shares) < 0 or abs(sum(shares) - 1) > 1e-9:
            raise ExportError(f"split fractions must be three shares summing to 1, got "
                              f"{self.fractions}")
        if self.block_cells < 1 or self.shard_size < 1:
            raise ExportError("block_cells and shard_size must be at least 1")


def export(con: duckdb.DuckDBPyConnection, db: Path, out: Path,
           config: ExportConfig = ExportConfig(),
           on_progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Write <out>/{split}.csv and, with webdataset, <out>/webdataset/{split}/*.tar; returns the
    manifest (also written as <out>/manifest.json)."""
    if not has_table(con, "pair_settings"):
        raise ExportError(f"{db}: no embedded pairs; run `skyscript-db embed` first")
    q = queries.load(SQL)
    create_macros(con)
    _candidates(con, config.where)
    train, validation, _ = config.fractions
    q["export_pairs"].run(con, top_pct=config.top_pct, collection=config.collection,
                          block_cells=config.block_cells, seed=config.seed, train=train,
                          validation=validation)
    counts = {s: {"pairs": 0, "cells": 0, "blocks": 0, "shards": 0} for s in SPLITS}
    for row in q["split_counts"].dicts(con):
        counts[row.pop("split")].update(row)
    total = sum(r["pairs"] for r in counts.values())
    if total == 0:
        raise ExportError(f"{db}: no pair matches the export's filters ({_describe(config)})")
    done = 0
    with staged_folder(out) as staging:
        for split in SPLITS:
            rows = _rows(con, db, split, done, total, on_progress)
            counts[split]["shards"] = _write_split(staging, split, rows, config)
            done += counts[split]["pairs"]
        manifest = {"database": str(db.resolve()), "config": asdict(config), "splits": counts,
                    "pairs": total}
        write_json(staging / "manifest.json", manifest)
    log.info("export: %d pairs to %s (%s)", total, out,
             ", ".join(f"{s} {manifest['splits'][s]['pairs']:,}" for s in SPLITS))
    return manifest


@contextmanager
def staged_folder(out: Path) -> Iterator[Path]:
    """Write into `<out>.partial`; on success it replaces `out`, on failure `out` is untouched."""
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, default=str) + "\n")


def _candidates(con: duckdb.DuckDBPyConnection, where: str | None) -> None:
    query = f"select pair_id from pairs where ({where})" if where else "select pair_id from pairs"
    check_read_only(query)
    con.execute(f"create or replace temp table export_candidates as {query}")


def _rows(con: duckdb.DuckDBPyConnection, db: Path, split: str, done: int, total: int,
          on_progress: Callable[[int, int], None] | None) -> Iterator[dict[str, Any]]:
    root = str(db.parent.resolve())
    for page in queries.load(SQL)["page"].pages(con, PAGE, split=split, root=root):
        yield from page
        done += len(page)
        if on_progress:
            on_progress(done, total)


def _write_split(staging: Path, split: str, rows: Iterator[dict[str, Any]],
                 config: ExportConfig) -> int:
    """One CSV and (optionally) tar shards for one split; returns the number of shards."""
    shards = 0
    tar: tarfile.TarFile | None = None
    in_shard = 0
    with (staging / f"{split}.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            if not config.webdataset:
                continue
            if tar is None or in_shard == config.shard_size:
                if tar is not None:
                    tar.close()
                folder = staging / "webdataset" / split
                folder.mkdir(parents=True, exist_ok=True)
                tar = tarfile.open(folder / f"{split}-{shards:06d}.tar", "w",
                                   format=tarfile.USTAR_FORMAT)
                shards, in_shard = shards + 1, 0
            _add_sample(tar, row)
            in_shard += 1
    if tar is not None:
        tar.close()
    return shards


def _add_sample(tar: tarfile.TarFile, row: dict[str, Any]) -> None:
    """`<key>.jpg`, `<key>.txt` (the title) and `<key>.json` (everything else), fixed headers."""
    key = Path(row["filepath"]).stem
    meta = {k: row[k] for k in ("pair_id", "title", "title_multi_objects", "similarity_title",
                                "similarity_title_multi_objects", "similarity_rank_pct",
                                "collection_code", "gsd_m", "osm_type", "osm_id", "cell_id",
                                "block_id", "split")}
    meta |= {"tags": dict(row["tags"]), "acquired": row["acquired"],
             "bounds": [row["west"], row["south"], row["east"], row["north"]]}
    try:
        image = Path(row["filepath"]).read_bytes()
    except FileNotFoundError as e:
        raise ExportError(f"{row['filepath']}: image of pair {row['pair_id']} is missing; run "
                          "`skyscript-db fetch-images` again") from e
    members = (("jpg", image),
               ("txt", row["title"].encode()),
               ("json", json.dumps(meta, sort_keys=True, default=_json).encode()))
    for extension, data in members:
        info = tarfile.TarInfo(f"{key}.{extension}")
        info.size, info.mode, info.mtime = len(data), 0o644, 0
        tar.addfile(info, io.BytesIO(data))


def _json(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {value!r}")


def _describe(config: ExportConfig) -> str:
    return (f"top {config.top_pct:g} %, collection {config.collection or 'any'}, "
            f"where {config.where or 'none'}")

