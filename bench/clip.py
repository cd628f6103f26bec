"""Clip benchmark: a city-sized box (Vaduz, Liechtenstein) out of eight shifted copies of the
eleven extracts (bench/copies.py), three ways, each a whole `skyscript-db ingest` process timed
from start to exit (the process start, about 1.5 s of imports, is in every figure):

- the full ingest of the ×8 file (everything kept);
- `skyscript-db ingest ×8 --bbox …` (the clip applied while reading);
- reading the file once with DuckDB's ST_ReadOSM and nothing else (the floor);
- `osmium extract -b … ×8 -o city.pbf` (Debian's osmium-tool, C++), then ingest of city.pbf.

Writes a section into bench/results/ingest.md (after the marker line) and prints it.
Usage: python bench/clip.py [--repeat 3] [--copies 8]
"""

from __future__ import annotations

import datetime
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import skyscript_db

from common import ELEVEN, SMALL, parser, report_path  # bench/common.py
from copies import write_copies  # bench/copies.py

MARKER = "## Clipping a city out of a big file"
VADUZ = "9.49,47.12,9.55,47.17"
QUICK_BOX = "24.93,60.16,24.95,60.17"  # inside central Helsinki
CLI = [sys.executable, "-m", "skyscript_db", "-q"]


# The floor for any ingest through DuckDB: the same process start, one pass over every element.
READ_ONLY = ("import sys, skyscript_db; skyscript_db.connect().execute("
             "'select count(*) from ST_ReadOSM($p)', {'p': sys.argv[1]}).fetchall()")


def timed(*commands: list[str]) -> float:
    started = time.perf_counter()
    for command in commands:
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def objects(db: Path) -> int:
    with skyscript_db.connect(db, read_only=True) as con:
        return con.execute("select count(*) from osm_objects").fetchone()[0]


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--repeat", type=int, default=3)
    options.add_argument("--copies", type=int, default=8)
    args = options.parse_args()
    source, box, copies, repeat = (SMALL, QUICK_BOX, 1, 1) if args.quick else \
        (ELEVEN, VADUZ, args.copies, args.repeat)
    osmium_tool = shutil.which("osmium")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        big = write_copies(source, folder / f"x{copies}.osm.pbf", copies)
        ways = {
            "full ingest (no clip)": lambda db: [[*CLI, "ingest", str(big), "--db", str(db)]],
            f"ingest --bbox {box}": lambda db: [[*CLI, "ingest", str(big), "--bbox", box,
                                                 "--db", str(db)]],
        }
        ways["reading the file once (ST_ReadOSM, every element; no ingest)"] = lambda db: [
            [sys.executable, "-c", READ_ONLY, str(big)]]
        if osmium_tool:
            city = folder / "city.osm.pbf"
            ways[f"osmium extract -b {box}, then ingest"] = lambda db: [
                [osmium_tool, "extract", "-b", box, str(big), "-o", str(city), "-O"],
                [*CLI, "ingest", str(city), "--db", str(db)]]
        rows = []
        for name, commands in ways.items():
            seconds, kept = [], 0
            for i in range(repeat):
                db = folder / f"run{i}.duckdb"
                db.unlink(missing_ok=True)
                seconds.append(timed(*commands(db)))
                kept = objects(db) if db.exists() else 0
            rows.append((name, statistics.median(seconds), kept))
        size_mb = big.stat().st_size / 1e6
    full = rows[0][1]
    lines = [
        MARKER,
        "",
        f"Run {datetime.date.today()} by `python bench/clip.py` on {os.cpu_count()} cores: a "
        f"city-sized box ({box}) out of {copies} shifted copies of {source.name} "
        f"({size_mb:.1f} MB). Whole processes, start to exit (imports included), "
        f"median of {repeat}.",
        "",
        "| way | seconds | objects kept | × full ingest |",
        "|---|---|---|---|",
        *(f"| {name} | {s:.2f} | {f'{kept:,}' if kept else ''} | {s / full:.2f} |"
          for name, s, kept in rows),
        "",
        "The clipped ingest reads the file twice in DuckDB, as the full ingest does (the tagged "
        "elements with every way, then every node's coordinates), and gives every way a box "
        "that holds it: the union of the boxes of its nodes' id blocks (256 consecutive ids, "
        "mostly mapped together); only "
        "the ways and multipolygons whose box meets the clip get a geometry, libosmium "
        "assembling those multipolygons from a small file of their own. The reading row is "
        "the floor of any ingest through DuckDB: the same process start (imports, the spatial "
        "extension) and one pass over every element; the CLI's own start "
        "(its imports) adds about 0.25 s to the ingest rows. Beyond the floor, the clip pays "
        "the second pass (every node's coordinates) and the ways' boxes: a way may cross the "
        "box with none of its nodes inside, so every way needs one. osmium's count is larger: "
        "`extract -b` keeps whole every way and relation with a node in the box, and its "
        "ingest keeps them all; the clip keeps what intersects.",
        "",
    ]
    if not osmium_tool:
        lines += ["(`osmium` not found: `apt-get install osmium-tool` adds the osmium extract "
                  "row.)", ""]
    results = report_path(args, "ingest")
    text = results.read_text() if results.exists() else ""
    before = text.split(MARKER)[0].rstrip()
    results.write_text((before + "\n\n" if before else "") + "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
