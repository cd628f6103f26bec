"""SQL-stage benchmark: every stage after ingest, on the eleven extracts and on twice that input.

The doubled input is the eleven extracts plus a synthetic twin of them (every id offset, every
node moved 1° east): the same density of objects and tags over twice the area. Times are each
stage's own transaction, as recorded in stage_runs. Writes bench/results/sql.md.
Usage: python bench/sql.py [--repeat N]
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
    args = options.parse_args()
    pbf, repeat = (SMALL, 1) if args.quick else (ELEVEN, args.repeat)
    results = report_path(args, "sql")
    with tempfile.TemporaryDirectory() as tmp:
        doubled = write_copies(pbf, Path(tmp) / "doubled.osm.pbf", 2)
        runs = {pbf.name: time_stages(pbf, repeat),
                "doubled (the same + a shifted twin)": time_stages(doubled, repeat)}
    lines = [
        "# SQL stages benchmark",
        "",
        f"Run {datetime.date.today()} on {os.cpu_count()} cores; median of {repeat} builds, "
        "each into a fresh database; default build config (seed 0, 25 % of occupied cells, "
        "rare-tag threshold 20, cap 200, 10 surrounding objects). Stage tag_visibility runs the "
        "tag classifier and has its own benchmark (bench/results/tag_classifier.md).",
        "",
    ]
    totals = {}
    for name, (seconds, rows, objects) in runs.items():
        lines += [f"## {name}: {objects:,} objects", "",
                  "| stage | median s | rows in | rows out | rows in per s |", "|---|---|---|---|---|"]
        total = 0.0
        for stage in STAGE_NAMES:
            m = statistics.median(seconds[stage])
            total += m
            rows_in, rows_out = rows[stage]
            lines.append(f"| {stage} | {m:.3f} | {rows_in:,} | {rows_out:,} | "
                         f"{rows_in / m if m else 0:,.0f} |")
        lines += [f"| **all SQL stages** | **{total:.2f}** | | | |", ""]
        totals[name] = (total, objects)
    (t1, n1), (t2, n2) = totals.values()
    lines += [f"Doubling the input ({n2 / n1:.2f}× objects) multiplies the SQL time by "
              f"{t2 / t1:.2f}×.", ""]
    results.write_text("\n".join(lines))
    print(results.read_text())


if __name__ == "__main__":
    main()
