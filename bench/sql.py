"""SQL-stage benchmark: every stage after ingest, on the eleven extracts and on 2, 4 and 8 copies.

A copy is the eleven extracts shifted (every id offset, every node moved east; bench/copies.py):
the same density of objects and tags over n times the area. Times are each stage's own run, as
recorded in stage_runs. Writes bench/results/sql.md: a table per input, then the scale curve
(each stage's time on n copies over its time on one: n or less is linear or better).
Usage: python bench/sql.py [--repeat N] [--copies 1,2,4,8]
"""

from __future__ import annotations

import datetime
import os
import statistics
import tempfile
from pathlib import Path

import skyscript_db
from skyscript_db.etl.pipeline import METHOD, build
from skyscript_db.etl.sql_stage import SqlStage

from common import ELEVEN, SMALL, parser, report_path  # bench/common.py
from copies import write_copies  # bench/copies.py

# tag_visibility runs models: its own bench
STAGE_NAMES = tuple(s.name for s in METHOD if isinstance(s, SqlStage))



def time_stages(pbf: Path, repeat: int) -> tuple[dict[str, list[float]], dict[str, tuple], int]:
    seconds: dict[str, list[float]] = {s: [] for s in STAGE_NAMES}
    rows: dict[str, tuple] = {}
    objects = 0
    for i in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / f"run{i}.duckdb"
            build(pbf, db, skyscript_db.BuildConfig(imagery="catalog"))
            with skyscript_db.connect(db, read_only=True) as con:
                objects = con.execute("select count(*) from osm_objects").fetchone()[0]
            with skyscript_db.connect(db, read_only=True) as con:
                for stage, s, rows_in, rows_out in con.execute(
                        "select stage, seconds, rows_in, rows_out from stage_runs "
                        "where stage in (select unnest($stages))",
                        {"stages": list(STAGE_NAMES)}).fetchall():
                    seconds[stage].append(s)
                    rows[stage] = (rows_in, rows_out)
    return seconds, rows, objects


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--repeat", type=int, default=3)
    options.add_argument("--copies", default="1,2,4,8")
    args = options.parse_args()
    pbf, repeat, copies = (SMALL, 1, [1, 2]) if args.quick else \
        (ELEVEN, args.repeat, [int(n) for n in args.copies.split(",")])
    results = report_path(args, "sql")
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in copies:
            source = pbf if n == 1 else write_copies(pbf, Path(tmp) / f"x{n}.osm.pbf", n)
            runs[n] = time_stages(source, repeat)
    lines = [
        "# SQL stages benchmark",
        "",
        f"Run {datetime.date.today()} on {os.cpu_count()} cores; median of {repeat} builds, "
        "each into a fresh database; default build config (seed 0, 25 % of occupied cells, "
        "rare-tag threshold 20, cap 200, 10 surrounding objects). Stage tag_visibility runs the "
        "tag classifier and has its own benchmark (bench/results/tag_classifier.md).",
        "",
    ]
    medians = {n: {stage: statistics.median(seconds[stage]) for stage in STAGE_NAMES}
               for n, (seconds, _, _) in runs.items()}
    for n, (_, rows, objects) in runs.items():
        name = pbf.name if n == 1 else f"{n} copies of {pbf.name}"
        lines += [f"## {name}: {objects:,} objects", "",
                  "| stage | median s | rows in | rows out | rows in per s |",
                  "|---|---|---|---|---|"]
        for stage, m in medians[n].items():
            rows_in, rows_out = rows[stage]
            lines.append(f"| {stage} | {m:.3f} | {rows_in:,} | {rows_out:,} | "
                         f"{rows_in / m if m else 0:,.0f} |")
        lines += [f"| **all SQL stages** | **{sum(medians[n].values()):.2f}** | | | |", ""]
    lines += _scale_curve(medians, {n: objects for n, (_, _, objects) in runs.items()})
    results.write_text("\n".join(lines))
    print(results.read_text())


def _scale_curve(medians: dict[int, dict[str, float]], objects: dict[int, int]) -> list[str]:
    """Each stage's time on n copies over its time on one copy, beside n."""
    sizes = sorted(medians)
    curves = {stage: {n: medians[n][stage] for n in sizes} for stage in STAGE_NAMES}
    curves["all SQL stages"] = {n: sum(medians[n].values()) for n in sizes}
    lines = ["## Scale curve: time on n copies ÷ time on one", "",
             "| stage | " + " | ".join(f"{n}× ({objects[n]:,} objects)" for n in sizes) + " |",
             "|---" * (len(sizes) + 1) + "|"]
    for stage, seconds in curves.items():
        base = seconds[sizes[0]]
        lines.append(f"| {stage} | " + " | ".join(
            f"{seconds[n] / base:.2f}" if base else "" for n in sizes) + " |")
    return [*lines, "", "Linear is n (the input grows n-fold); a stage below n gets cheaper per "
            "object as the input grows (fixed costs: seeds, setup).", ""]


if __name__ == "__main__":
    main()
