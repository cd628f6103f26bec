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
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from skyscript_db import queries, storage
from skyscript_db.captions import create_caption_texts
from skyscript_db.config import ExportConfig, Options
from skyscript_db.db import has_table
from skyscript_db.errors import ExportError
from skyscript_db.etl.stage import Context, ProgressCallback, StageResult, fingerprint
from skyscript_db.readonly import pairs_query
from skyscript_db.splits import SPLITS, assign_splits, locate_pairs

log = logging.getLogger(__name__)

STAGE = "export"
SQL = "95_export.sql"
# The columns of the released SkyScript CSVs first, then where the pair comes from.
CSV_COLUMNS = ("filepath", "title", "title_multi_objects", "similarity_title",
               "similarity_title_multi_objects", "similarity_rank_pct", "pair_id",
               "collection_code", "cell_id", "block_id", "split", "title_natural",
               "title_multi_objects_natural", "caption")
PAGE = 2000
# layout "skyscript": the released dataset's file names, as TorchGeo's SkyScript class reads them
# (the CSVs at the root; every image folder images2 … images7 must exist).
SKYSCRIPT_CSVS = {"train": "SkyScript_train_top30pct_filtered_by_CLIP_openai.csv",
                  "validation": "SkyScript_val_5K_filtered_by_CLIP_openai.csv",
                  "test": "SkyScript_test_30K_filtered_by_CLIP_openai.csv"}
SKYSCRIPT_IMAGE_DIRS = tuple(f"images{i}" for i in range(2, 8))


@dataclass(frozen=True)
class ExportStage:
    """Writes files only; `<out>.partial` is moved into place at the end."""

    name: str = STAGE
    upstream: tuple[str, ...] = ("embed",)
    transactional: bool = False

    def fingerprint(self, ctx: Context, options: Options) -> str:
        return fingerprint(asdict(options.export))

    def run(self, ctx: Context, options: Options) -> StageResult:
        """Write <out>/{split}.csv and, with webdataset, <out>/webdataset/{split}/*.tar, and
        <out>/manifest.json."""
        manifest = export(ctx, options.export)
        return StageResult(manifest["pairs"], manifest["pairs"], info=manifest)


def export(ctx: Context, config: ExportConfig) -> dict[str, Any]:
    con, db, out, on_progress = ctx.con, ctx.paths.db, config.out, ctx.progress(STAGE)
    if out is None:
        raise ExportError("export: no output folder given")
    if not has_table(con, "pair_settings"):
        raise ExportError(f"{db}: no embedded pairs; run `skyscript-db embed` first")
    queries.create_macros(con)
    create_caption_texts(con)
    con.sql(pairs_query(config.where)).create_view("export_candidates", replace=True)
    locate_pairs(con, config)
    assigned = assign_splits(con, config)
    counts, total = assigned["splits"], assigned["pairs"]
    if total == 0:
        raise ExportError(f"{db}: no pair matches the export's filters ({_describe(config)})")
    done = 0
    with staged_folder(out) as staging:
        if config.layout == "skyscript":
            for folder in SKYSCRIPT_IMAGE_DIRS:
                (staging / folder).mkdir()
        for split in SPLITS:
            rows = _rows(con, ctx.paths.root, split, done, total, on_progress)
            counts[split]["shards"] = _write_split(staging, split, rows, config)
            done += counts[split]["pairs"]
        # The options without `out`: the same export written elsewhere is byte-identical.
        options = {k: v for k, v in asdict(config).items() if k != "out"}
        manifest = {"database": str(db.resolve()), "config": options, "splits": counts,
                    "pairs": total, "block_cells": assigned["block_cells"]}
        write_json(staging / "manifest.json", manifest)
    log.info("export: %d pairs to %s (%s)", total, out,
             ", ".join(f"{s} {manifest['splits'][s]['pairs']:,}" for s in SPLITS))
    return manifest


@contextmanager
def staged_folder(out: str | Path) -> Iterator[Path]:
    """Write into `<out>.partial`; on success it replaces `out`, on failure `out` is untouched.
    A URL is written to a local temporary folder first, then uploaded."""
    if storage.is_url(out):
        with tempfile.TemporaryDirectory(prefix="skyscript-export-") as folder:
            yield Path(folder)
            storage.upload_folder(Path(folder), str(out))
        return
    out = Path(out)
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


def _rows(con: duckdb.DuckDBPyConnection, root: Path, split: str, done: int, total: int,
          on_progress: ProgressCallback | None) -> Iterator[dict[str, Any]]:
    for page in queries.load(SQL)["page"].pages(con, PAGE, split=split, root=str(root)):
        yield from page
        done += len(page)
        if on_progress:
            on_progress(done, total)


def _write_split(staging: Path, split: str, rows: Iterator[dict[str, Any]],
                 config: ExportConfig) -> int:
    """One CSV and (optionally) tar shards for one split; returns the number of shards. With
    layout skyscript the CSV takes the released name and each image is copied beside it."""
    shards = 0
    tar: tarfile.TarFile | None = None
    in_shard = 0
    skyscript = config.layout == "skyscript"
    name = SKYSCRIPT_CSVS[split] if skyscript else f"{split}.csv"
    with (staging / name).open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(_copy_image(staging, row) if skyscript else row)
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


def _copy_image(staging: Path, row: dict[str, Any]) -> dict[str, Any]:
    """The row with its image copied into one of the released image folders (by pair id) and
    `filepath` relative to the export's root, as the released CSVs have it."""
    folder = SKYSCRIPT_IMAGE_DIRS[row["pair_id"] % len(SKYSCRIPT_IMAGE_DIRS)]
    name = Path(row["filepath"]).name
    (staging / folder / name).write_bytes(_image(row))
    return row | {"filepath": f"{folder}/{name}"}


def _image(row: dict[str, Any]) -> bytes:
    try:
        return storage.read_bytes(row["filepath"])
    except FileNotFoundError as e:
        raise ExportError(f"{row['filepath']}: image of pair {row['pair_id']} is missing; run "
                          "`skyscript-db fetch-images` again") from e


def _add_sample(tar: tarfile.TarFile, row: dict[str, Any]) -> None:
    """`<key>.jpg`, `<key>.txt` (the chosen caption) and `<key>.json` (everything else), fixed
    headers."""
    key = Path(row["filepath"]).stem
    meta = {k: row[k] for k in ("pair_id", "title", "title_multi_objects", "title_natural",
                                "title_multi_objects_natural", "caption", "similarity_title",
                                "similarity_title_multi_objects", "similarity_rank_pct",
                                "collection_code", "gsd_m", "osm_type", "osm_id", "cell_id",
                                "block_id", "split")}
    meta |= {"tags": dict(row["tags"]), "acquired": row["acquired"],
             "bounds": [row["west"], row["south"], row["east"], row["north"]]}
    members = (("jpg", _image(row)),
               ("txt", row["caption"].encode()),
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

