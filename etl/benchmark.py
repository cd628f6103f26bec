"""Stage make_benchmark: the held-out benchmark (stage benchmark) as a folder of class folders.

The images are the fetch stage's own files, copied under `<out>/<class name>/`; `benchmark.csv`
names each image's class and object, and `manifest.json` says per class how many objects were
drawn, got an image request and got an image (an object without a covering collection gets none).
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

from skyscript_db import queries, storage
from skyscript_db.config import Options
from skyscript_db.errors import ConfigError, DatabaseError
from skyscript_db.etl.export import staged_folder, write_json
from skyscript_db.etl.stage import Context, StageResult, fingerprint

log = logging.getLogger(__name__)

STAGE = "make_benchmark"
SQL = "benchmark_set.sql"
CSV_COLUMNS = ("filepath", "class_name", "key", "value", "pair_id", "osm_type", "osm_id",
               "collection_code", "gsd_m")


@dataclass(frozen=True)
class MakeBenchmarkStage:
    """Writes files only, into `<out>.partial` first."""

    name: str = STAGE
    upstream: tuple[str, ...] = ("benchmark", "fetch_images")
    transactional: bool = False

    def fingerprint(self, ctx: Context, options: Options) -> str:
        return fingerprint(str(options.benchmark_out))

    def run(self, ctx: Context, options: Options) -> StageResult:
        out = options.benchmark_out
        if out is None:
            raise ConfigError("make_benchmark: no output folder given")
        q = queries.load(SQL)
        queries.create_macros(ctx.con)
        counts = q["class_counts"].dicts(ctx.con)
        if not counts:
            raise DatabaseError(f"{ctx.paths.db}: no benchmark objects; build with "
                                "--benchmark-classes K --benchmark-per-class M")
        rows = q["members"].dicts(ctx.con, root=str(ctx.paths.root))
        with staged_folder(out) as staging:
            with (staging / "benchmark.csv").open("w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, CSV_COLUMNS, extrasaction="ignore",
                                        lineterminator="\n")
                writer.writeheader()
                for row in rows:
                    target = Path(row["class_name"]) / Path(row["image_path"]).name
                    (staging / target).parent.mkdir(exist_ok=True)
                    (staging / target).write_bytes(storage.read_bytes(row["image_path"]))
                    writer.writerow(row | {"filepath": str(target)})
            manifest = {"database": str(ctx.paths.db.resolve()), "images": len(rows),
                        "classes": counts}
            write_json(staging / "manifest.json", manifest)
        log.info("benchmark: %d images in %d classes to %s", len(rows), len(counts), out)
        return StageResult(len(rows), len(rows), info=manifest)
