"""What every benchmark shares: where the data and the results are, and the command line's
`--quick` (tiny inputs, one repeat, the report written to a temporary file instead of
bench/results). `make test` runs every script with `--quick` (tests/test_bench.py), so a renamed
function breaks CI rather than the next person's benchmark."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OSM = ROOT.parent / "shared" / "data" / "osm"
ELEVEN = OSM / "eleven-extracts-merged.osm.pbf"
SMALL = OSM / "helsinki-center.osm.pbf"  # what --quick reads instead of a big extract
RESULTS = ROOT / "bench" / "results"


def parser(doc: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="Tiny inputs, one repeat, the report to --out (a check, no figure).")
    parser.add_argument("--out", type=Path,
                        help="Where the report goes (default bench/results/NAME.md; with "
                             "--quick a temporary file).")
    return parser


def report_path(args: argparse.Namespace, name: str) -> Path:
    """bench/results/NAME.md, or --out, or with --quick a temporary file."""
    if args.out:
        return args.out
    if args.quick:
        return Path(tempfile.mkdtemp(prefix="skyscript-bench-")) / f"{name}.md"
    return RESULTS / f"{name}.md"
