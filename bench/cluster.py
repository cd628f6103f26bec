"""Fetch and embed, local executor against Ray with 1 and 2 worker processes, on this machine.

The default build of central Helsinki (data/helsinki.osm.pbf, render imagery: SYNTHETIC images
drawn from OSM) gives the requests; each run starts from a copy of the same database. Fetch:
every request rendered and written as a JPEG; embed: every fetched pair through the tiny
open_clip model (untrained, as the default build). Times are the stage's own (`pipeline.run`,
in this process): the Ray instance (`ray.init(num_cpus=N)`) is started before the clock, as a
running cluster would be; starting its worker processes and loading the model in each actor are
in the figures. The local executor uses 2 worker processes for fetch and 2 torch threads for embed.
Writes bench/results/cluster.md and prints it.
Usage: python bench/cluster.py [--pbf data/helsinki.osm.pbf]
"""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import ray

import skyscript_db
from skyscript_db.config import BuildConfig, ClusterConfig, EmbedConfig, FetchConfig, Options
from skyscript_db.db import Paths
from skyscript_db.etl import pipeline

from common import ROOT, SMALL, parser, report_path  # bench/common.py

RUNS = (("local", None), ("Ray, 1 worker", 1), ("Ray, 2 workers", 2))


def copied(db: Path, folder: Path, with_images: bool) -> Path:
    folder.mkdir()
    target = folder / db.name
    shutil.copy(db, target)
    if with_images:
        shutil.copytree(Paths.of(db).images, Paths.of(target).images)
    return target


def timed_stage(db: Path, stage: str, options: Options, workers: int | None) -> tuple[float, int]:
    if workers is not None:
        ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False)
        options = Options(fetch=options.fetch, embed=replace(options.embed, actors=workers),
                          cluster=ClusterConfig("ray"))
    try:
        started = time.perf_counter()
        result = pipeline.run(db, options, [stage], only=stage)[stage]
        return time.perf_counter() - started, result.rows_out
    finally:
        if workers is not None:
            ray.shutdown()


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--pbf", type=Path, default=ROOT / "data" / "helsinki.osm.pbf")
    args = options.parse_args()
    # --quick: one grid cell of the shared Helsinki extract (no rare-tag objects), the local
    # executor only (tests/test_ray.py runs the same stages on a real cluster)
    pbf, config, runs = (SMALL, BuildConfig(n_cells=1, rare_threshold=0), RUNS[:1]) \
        if args.quick else (args.pbf, BuildConfig(), RUNS)
    work = Path(tempfile.mkdtemp(prefix="skyscript-cluster-"))
    base = work / "base" / "helsinki.duckdb"
    skyscript_db.build(pbf, base, config)
    local = Options(fetch=FetchConfig(workers=2, processes=True), embed=EmbedConfig(batch=64))
    rows: list[tuple[str, str, int, float]] = []
    for stage, with_images in (("fetch_images", False), ("embed", True)):
        source = base
        for name, workers in runs:
            db = copied(source, work / f"{stage}-{workers}", with_images)
            seconds, n = timed_stage(db, stage, local, workers)
            rows.append((stage, name, n, seconds))
            if stage == "fetch_images" and workers is None:
                base = db  # embed starts from the locally fetched images
    lines = [
        "# Fetch and embed: local executor against Ray",
        "",
        f"Run {datetime.date.today()} on {os.cpu_count()} cores with `python bench/cluster.py`. "
        "Stage wall time in the driver process (Ray's instance started before the clock; its "
        "worker processes and each actor's model load are in the figure), images per second "
        "counted as output rows, and the ratio to the local executor's time. Local: fetch in 2 "
        "worker processes, embed in this process with 2 torch threads.",
        "",
        "| stage | executor | images | seconds | images/s | × local |",
        "|---|---|---|---|---|---|",
    ]
    for stage, name, n, seconds in rows:
        reference = next(s for st, nm, _, s in rows if st == stage and nm == RUNS[0][0])
        lines.append(f"| {stage} | {name} | {n:,} | {seconds:.1f} | {n / seconds:.1f} | "
                     f"{seconds / reference:.2f} |")
    report_path(args, "cluster").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
