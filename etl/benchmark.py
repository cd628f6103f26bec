"""Write the held-out benchmark (stage benchmark) as a folder of class folders plus a CSV.

The images are the fetch stage's own files, copied under `<out>/<class name>/`; `benchmark.csv`
names each image's class and object, and `manifest.json` says per class how many objects were
drawn, got an image request and got an image (an object without a covering collection gets none).
"""

from __future__ import annotations

import csv
import logging
import shutil
from pathlib import Path
from typing import Any

import duckdb

from skyscript_db import queries
from skyscript_db.errors import SkyscriptError
from skyscript_db.etl.export import staged_folder, write_json
from skyscript_db.sql_stages import create_macros
from skyscript_db.stages import has_table

log = logging.getLogger(__name__)

SQL = "benchmark_set.sql"
CSV_COLUMNS = ("filepath", "class_name", "key", "value", "pair_id", "osm_type", "osm_id",
               "collection_code", "gsd_m")


def write_benchmark(con: duckdb.DuckDBPyConnection, db: Path, out: Path) -> dict[str, Any]:
    q = queries.load(SQL)
    create_macros(con)
    if not has_table(con, "images"):
        raise SkyscriptError(f"{db}: no images yet; run `skyscript-db fetch-images`")
    counts = q["class_counts"].dicts(con)
    if not counts:
        raise SkyscriptError(f"{db}: no benchmark objects; build with --benchmark-classes K "
                             "--benchmark-per-class M")
    rows = q["members"].dicts(con)
    with staged_folder(out) as staging:
        with (staging / "benchmark.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            for row in rows:
                target = Path(row["class_name"]) / Path(row["image_path"]).name
                (staging / target).parent.mkdir(exist_ok=True)
                shutil.copyfile(db.parent / row["image_path"], staging / target)
                writer.writerow(row | {"filepath": str(target)})
        manifest = {"database": str(db.resolve()), "images": len(rows), "classes": counts}
        write_json(staging / "manifest.json", manifest)
    log.info("benchmark: %d images in %d classes to %s", len(rows), len(counts), out)
    return manifest
