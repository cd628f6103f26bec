"""Build benchmark: what `make build-db` costs once the venv exists. The very command of the
Makefile's build-db target (`skyscript-db build PBF --db DB --fetch --embed`) on the default
extract (central Helsinki), each run a whole process timed from start to exit into a new
database:

- first on the machine: the user cache empty (XDG_CACHE_HOME a new folder), so the tag
  classifier embeds its texts and fits its models;
- a new database with the user cache warm (what every later build on the machine pays).

Writes bench/results/build.md: median wall seconds and each stage's seconds (table stage_runs)
of the median run. Usage: python bench/build.py [--repeat 3]
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import skyscript_db

from common import SMALL, parser, report_path  # bench/common.py

CLI = [sys.executable, "-m", "skyscript_db", "-q"]
TARGET_S = 40


def build(pbf: Path, db: Path, cache: Path | None,
          extra: list[str]) -> tuple[float, dict[str, float]]:
    """One build in a fresh process (user cache `cache`, else the environment's): its wall
    seconds and its stages' seconds."""
    env = {**os.environ, **({"XDG_CACHE_HOME": str(cache)} if cache else {})}
    started = time.perf_counter()
    subprocess.run([*CLI, "build", str(pbf), "--db", str(db), "--fetch", "--embed", *extra],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    wall = time.perf_counter() - started
    with skyscript_db.connect(db, read_only=True) as con:
        stages = dict(con.execute("select stage, seconds from stage_runs "
                                  "order by finished_at").fetchall())
    return wall, stages


def runs(folder: Path, pbf: Path, repeat: int, extra: list[str],
         empty_cache: bool) -> dict[str, list]:
    """`repeat` first builds (each with its own empty cache, unless not `empty_cache`), then
    as many into new databases with the last of those caches warm."""
    done: dict[str, list] = {"first": [], "warm": []}
    cache = None
    for i in range(repeat):
        cache = folder / f"cache{i}" if empty_cache else None
        done["first"].append(build(pbf, folder / f"first{i}.duckdb", cache, extra))
    for i in range(repeat):
        done["warm"].append(build(pbf, folder / f"warm{i}.duckdb", cache, extra))
    return done


def median_run(results: list[tuple[float, dict[str, float]]]) -> tuple[float, dict[str, float]]:
    """The run of median wall time (of an even number, the upper of the middle two)."""
    return sorted(results, key=lambda r: r[0])[len(results) // 2]


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--repeat", type=int, default=3)
    args = options.parse_args()
    # --quick, a check that the script works: one run of each on a twentieth of the sample,
    # with the caller's user cache (the tests' holds the classifier: no fit)
    repeat, extra = (1, ["--fraction", "0.05"]) if args.quick else (args.repeat, [])
    with tempfile.TemporaryDirectory() as tmp:
        done = runs(Path(tmp), SMALL, repeat, extra, empty_cache=not args.quick)
    first, warm = median_run(done["first"]), median_run(done["warm"])
    stages = list(first[1])
    lines = [
        "# Build benchmark: `make build-db` once the venv exists",
        "",
        f"Run {datetime.date.today()} by `python bench/build.py` on {os.cpu_count()} cores: "
        f"`skyscript-db build {SMALL.name} --db DB --fetch --embed` (the Makefile's build-db "
        f"command, default options{' ' + ' '.join(extra) if extra else ''}), each a whole "
        f"process from start to exit into a new database; median of {repeat}. First: the user "
        "cache empty, as on a new machine (the tag classifier embeds its texts and fits its "
        "models). Warm: a new database with the user cache of an earlier build.",
        "",
        "| run | wall s (median) | wall s (all) | " + " | ".join(stages) + " |",
        "|---" * (3 + len(stages)) + "|",
        *(f"| {name} | {run[0]:.1f} | "
          + ", ".join(f"{w:.1f}" for w, _ in done[key]) + " | "
          + " | ".join(f"{run[1].get(s, 0):.2f}" for s in stages) + " |"
          for name, key, run in (("first (empty cache)", "first", first),
                                 ("new database, cache warm", "warm", warm))),
        "",
        f"Target (issue 15): ≤ {TARGET_S} s for the first build. Stage seconds are those of the "
        "median run as table stage_runs records them; the rest of the wall time is the process: "
        "its start (imports), opening the database, and its exit.",
        "",
    ]
    report_path(args, "build").write_text("\n".join(lines))
    print("\n".join(lines))
    if not args.quick and first[0] > TARGET_S:
        print(f"first build above the {TARGET_S} s target", file=sys.stderr)


if __name__ == "__main__":
    main()
