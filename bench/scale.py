"""Ingest scale curve: `skyscript-db ingest` beside `osmium export -f pg` on 1, 2, 4 and 8 shifted
copies of the eleven extracts (bench/copies.py), alternated, each a whole process timed from start
to exit (our process start, about 1 s of imports and extension loading, is in every figure;
osmium's is too).

Peak RSS is the largest process of each command's tree (os.wait4: the command and the children
it waited for). The ×8 file is also ingested with
`--memory-limit 512MB`. Writes bench/results/scale.md and prints it.
Usage: python bench/scale.py [--repeat 3] [--copies 1,2,4,8]
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

CLI = [sys.executable, "-m", "skyscript_db", "-q"]


def measured(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of `command`'s process tree."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{command[:4]} failed: {proc.stderr.read().decode()[-300:]}")
    return wall, usage.ru_maxrss / 1024


def ours(pbf: Path, folder: Path, *extra: str) -> tuple[float, float, int]:
    db = folder / "scale.duckdb"
    for leftover in folder.glob("scale.duckdb*"):
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    wall, rss = measured([*CLI, "ingest", str(pbf), "--db", str(db), *extra])
    with skyscript_db.connect(db, read_only=True) as con:
        objects = con.execute("select count(*) from osm_objects").fetchone()[0]
    return wall, rss, objects


def osmium(pbf: Path, folder: Path) -> tuple[float, float]:
    return measured(["osmium", "export", "-f", "pg", "-O", "-o", str(folder / "out.pg"), str(pbf)])


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--repeat", type=int, default=3)
    options.add_argument("--copies", default="1,2,4,8")
    args = options.parse_args()
    source, repeat, copies = (SMALL, 1, "1,2") if args.quick else \
        (ELEVEN, args.repeat, args.copies)
    anchor = shutil.which("osmium")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sizes = [int(c) for c in copies.split(",")]
        for n in sizes:
            pbf = write_copies(source, folder / f"x{n}.osm.pbf", n)
            runs, anchors = [], []
            for _ in range(repeat):  # alternated, so drift hits both alike
                runs.append(ours(pbf, folder))
                if anchor:
                    anchors.append(osmium(pbf, folder))
            limited = ours(pbf, folder, "--memory-limit", "512MB") if n == sizes[-1] else None
            rows.append((n, pbf.stat().st_size, runs, anchors, limited))
            pbf.unlink()
    results = report_path(args, "scale")
    write_report(results, source, rows, repeat, anchor is not None)
    print(results.read_text())


def write_report(results: Path, source: Path, rows: list, repeat: int,
                 has_anchor: bool) -> None:
    lines = [
        "# Ingest scale curve",
        "",
        f"Run {datetime.date.today()} on {os.cpu_count()} cores with `python bench/scale.py`: "
        f"copies of {source.name} (bench/copies.py), whole processes, median of "
        f"{repeat} alternated runs; peak RSS of the largest process in each command's tree.",
        "" if has_anchor else "\n`osmium` (Debian's osmium-tool) is not installed: no anchor "
                              "column (`apt-get install osmium-tool`).\n",
        "| copies | MB | ingest s | peak RSS MiB | objects | s per copy | `osmium export -f pg` s "
        "| osmium RSS MiB | ingest ÷ osmium |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n, size, runs, anchors, limited in rows:
        wall = statistics.median(r[0] for r in runs)
        rss = max(r[1] for r in runs)
        line = (f"| {n} | {size / 1e6:.1f} | {wall:.2f} | {rss:.0f} | {runs[0][2]:,} | "
                f"{wall / n:.2f} |")
        if anchors:
            a_wall = statistics.median(a[0] for a in anchors)
            line += f" {a_wall:.2f} | {max(a[1] for a in anchors):.0f} | {wall / a_wall:.2f}× |"
        else:
            line += " – | – | – |"
        lines.append(line)
        if limited:
            lines.append(f"| {n}, `--memory-limit 512MB` | {size / 1e6:.1f} | {limited[0]:.2f} | "
                         f"{limited[1]:.0f} | {limited[2]:,} | {limited[0] / n:.2f} | | | |")
    results.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
