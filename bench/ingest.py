"""Ingest benchmark: our ingest beside osmium fileinfo -e, DuckDB ST_ReadOSM and QuackOSM.

Every measurement runs in its own process, so peak RSS is that process's alone (os.wait4).
Writes bench/results/ingest.md. Usage: python bench/ingest.py [--repeat N] [--quackosm-python PATH]
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ELEVEN, OSM, SMALL, parser, report_path  # bench/common.py

SCALING = ["helsinki-center.osm.pbf", "liechtenstein-2015.osm.pbf", "andorra-2020.osm.pbf",
           "eleven-extracts-merged.osm.pbf"]
CLIP_MARKER = "## Clipping a city out of a big file"

# Each snippet prints one JSON object; "seconds" is the timed work inside the process.
OURS = """
import json, sys, time
from pathlib import Path
import skyscript_db
from skyscript_db.config import IngestConfig
from skyscript_db.etl.ingest import Source, stage_files, write
from skyscript_db.etl.osm import DEFAULT_LOCATION_INDEX
from skyscript_db.etl.stage import transaction
con = skyscript_db.connect(sys.argv[2])
t = time.perf_counter()
# as the pipeline runs it: the reading before the stage's transaction, the writing inside
files = [Source(sys.argv[1], Path(sys.argv[1]))]
stage_files(con, files, IngestConfig(), DEFAULT_LOCATION_INDEX, scratch=Path(sys.argv[2]).parent)
with transaction(con):
    result = write(con, files, IngestConfig(), DEFAULT_LOCATION_INDEX)
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "objects": result.rows_out, **result.info}))
"""
BASELINE = """
import json, skyscript_db
skyscript_db.connect()
print(json.dumps({"seconds": 0.0}))
"""
READ_OSM = """
import json, sys, time
import skyscript_db
con = skyscript_db.connect()
t = time.perf_counter()
con.execute("create table raw as select * from ST_ReadOSM($p)", {"p": sys.argv[1]})
print(json.dumps({"seconds": time.perf_counter() - t,
                  "rows": con.execute("select count(*) from raw").fetchone()[0]}))
"""
QUACKOSM = """
import json, sys, time, quackosm
t = time.perf_counter()
quackosm.convert_pbf_to_parquet(sys.argv[1], result_file_path=sys.argv[2] + ".parquet",
                                ignore_cache=True, verbosity_mode="silent")
print(json.dumps({"seconds": time.perf_counter() - t}))
"""


def run(cmd: list[str]) -> dict:
    """Run cmd; return its JSON output (if any), wall seconds and peak RSS in MB."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out, err = proc.stdout.read(), proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {err.strip().splitlines()[-1:]}")
    data = json.loads(out.strip().splitlines()[-1]) if out.strip().startswith("{") else {}
    return {**data, "wall": wall, "rss_mb": usage.ru_maxrss / 1024}


def python_snippet(python: str, code: str, *args: str) -> list[str]:
    return [python, "-c", code, *args]


def repeat(n: int, make_cmd) -> list[dict]:
    results = []
    for i in range(n):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(run(make_cmd(str(Path(tmp) / f"run{i}.duckdb"))))
    return results


def median(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results)


def elements(pbf: Path) -> dict[str, int]:
    """Element counts by type, from osmium fileinfo -e when present, else ST_ReadOSM."""
    if shutil.which("osmium"):
        out = subprocess.run(["osmium", "fileinfo", "-e", "-j", str(pbf)],
                             capture_output=True, text=True, check=True).stdout
        counts = json.loads(out)["data"]["count"]
        return {k: counts[k] for k in ("nodes", "ways", "relations")}
    code = ("import json, sys, skyscript_db; con = skyscript_db.connect(); print(json.dumps(dict("
            "con.execute(\"select kind::varchar || 's', count(*) from ST_ReadOSM($p) group by 1\", "
            "{'p': sys.argv[1]}).fetchall())))")
    return json.loads(subprocess.run([sys.executable, "-c", code, str(pbf)], capture_output=True,
                                     text=True, check=True).stdout)


EXTRA_NODES = 2_000_000


def with_untagged_nodes(source: Path, target: Path, extra: int) -> Path:
    """A copy of `source` with `extra` untagged nodes (inside its bbox) added after its own."""
    import osmium
    from osmium.osm.mutable import Node

    last_node = 0
    with osmium.SimpleWriter(str(target)) as writer:
        for obj in osmium.FileProcessor(str(source)):
            if obj.is_node():
                last_node = obj.id
            elif extra:
                for i in range(extra):
                    writer.add_node(Node(id=last_node + 1 + i, version=1,
                                         location=(24.94 + (i % 1000) * 1e-5, 60.17 + (i // 1000) * 1e-6)))
                extra = 0
            writer.add(obj)
    return target


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--repeat", type=int, default=5)
    options.add_argument("--quackosm-python", help="a Python that has quackosm installed")
    args = options.parse_args()
    main_pbf, scaling_names = ELEVEN, SCALING
    if args.quick:
        main_pbf, scaling_names, args.repeat = SMALL, SCALING[:1], 1
    py = sys.executable
    counts = elements(main_pbf)
    n_input = sum(counts.values())
    rows = []

    ours = repeat(args.repeat, lambda db: python_snippet(py, OURS, str(main_pbf), db))
    best = min(ours, key=lambda r: r["seconds"])
    rows.append(("skyscript-db ingest (all geometries, tags, rejects; in-process)", ours, "seconds"))
    rows.append(("skyscript-db ingest, whole process (interpreter start and imports too)", ours, "wall"))
    if shutil.which("osmium"):
        fileinfo = repeat(args.repeat, lambda _: ["osmium", "fileinfo", "-e", str(main_pbf)])
        rows.append(("`osmium fileinfo -e` (decode floor, no geometry)", fileinfo, "wall"))
    readosm = repeat(args.repeat, lambda _: python_snippet(py, READ_OSM, str(main_pbf)))
    rows.append(("DuckDB `ST_ReadOSM` into a table (no geometries)", readosm, "seconds"))
    if args.quackosm_python:
        try:
            quack = repeat(min(args.repeat, 3),
                           lambda db: python_snippet(args.quackosm_python, QUACKOSM, str(main_pbf), db))
            rows.append(("QuackOSM 0.19 `convert_pbf_to_parquet` (GeoParquet)", quack, "seconds"))
        except RuntimeError as e:
            rows.append((f"QuackOSM failed: {e}", [], "seconds"))
    baseline = run(python_snippet(py, BASELINE))

    scaling = []
    for name in scaling_names:
        pbf = OSM / name
        result = repeat(1, lambda db: python_snippet(py, OURS, str(pbf), db))[0]
        scaling.append((name, elements(pbf), result))
    with tempfile.TemporaryDirectory() as tmp:
        extra = 1000 if args.quick else EXTRA_NODES
        padded = with_untagged_nodes(OSM / SCALING[0], Path(tmp) / "padded.osm.pbf", extra)
        result = repeat(1, lambda db: python_snippet(py, OURS, str(padded), db))[0]
        scaling.append((f"helsinki + {extra:,} untagged nodes", elements(padded), result))

    results = report_path(args, "ingest")
    write_report(results, main_pbf, counts, n_input, rows, best, baseline, scaling, args.repeat)
    print(results.read_text())


def write_report(report_file, source, counts, n_input, rows, best, baseline, scaling,
                 n_repeat) -> None:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    lines = [
        "# Ingest benchmark",
        "",
        f"Run {datetime.date.today()} on {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}.",
        f"Input: `{source.name}` — {counts['nodes']:,} nodes, {counts['ways']:,} ways, "
        f"{counts['relations']:,} relations = **{n_input:,} input objects**. "
        f"Median of {n_repeat} runs, each in a fresh process; peak RSS is that process's.",
        "",
        "| what | median s | best s | input objects/s (median) | peak RSS MB |",
        "|---|---|---|---|---|",
    ]
    for label, results, key in rows:
        if not results:
            lines.append(f"| {label} | – | – | – | – |")
            continue
        m, b = median(results, key), min(r[key] for r in results)
        lines.append(f"| {label} | {m:.2f} | {b:.2f} | {n_input / m:,.0f} | "
                     f"{max(r['rss_mb'] for r in results):.0f} |")
    lines += [
        "",
        f"Fastest ingest, by step (s): tags, nodes and way geometries by ST_ReadOSM and SQL "
        f"joins, multipolygon relations by libosmium in a thread beside them {best['read_s']}; "
        f"classify in SQL {best['assemble_s']}; write the tables {best['write_s']}; "
        f"{best['objects']:,} objects, {best['rejects']:,} rejects.",
        "",
        "## Memory against the number of untagged nodes",
        "",
        f"A process that only imports skyscript_db and loads spatial peaks at {baseline['rss_mb']:.0f} MB.",
        "",
        "| extract | nodes | ways | relations | objects | ingest s | peak RSS MB | RSS above baseline, bytes per node |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, c, r in scaling:
        above = (r["rss_mb"] - baseline["rss_mb"]) * 2**20 / c["nodes"]
        lines.append(f"| {name} | {c['nodes']:,} | {c['ways']:,} | {c['relations']:,} | "
                     f"{r['objects']:,} | {r['seconds']:.2f} | {r['rss_mb']:.0f} | {above:,.0f} |")
    (_, small, r_small), (_, padded, r_padded) = scaling[0], scaling[-1]
    added = padded["nodes"] - small["nodes"]
    growth = r_padded["rss_mb"] - r_small["rss_mb"]
    lines += [
        "",
        f"Adding {added:,} untagged nodes to the Helsinki extract changes peak RSS by {growth:+.0f} MB "
        f"({growth * 2**20 / added:.1f} bytes per added node) and ingest time by "
        f"{r_padded['seconds'] - r_small['seconds']:+.2f} s: untagged nodes cost the scan that "
        "reads every node's coordinates (table ingest_nodes, dropped once the ways are built) "
        "and the way join.",
        "",
        "Way geometries are joins in DuckDB, so with `--memory-limit` they are built in parts and "
        "spill to disk beside the database (bench/scale.py). libosmium keeps the locations of "
        "the multipolygons' member nodes in its `flex_mem` index (sparse for extracts, a dense "
        "array once node ids are dense: 8 bytes per node id); for a planet on a small machine "
        "pass `location_index='dense_file_array,PATH'` to keep it on disk.",
        "",
    ]
    # bench/clip.py's section, below its marker, is kept
    kept = report_file.read_text().partition(CLIP_MARKER) if report_file.exists() \
        else ("", "", "")
    report_file.write_text("\n".join(lines) + ("\n" + CLIP_MARKER + kept[2] if kept[1] else ""))


if __name__ == "__main__":
    main()
