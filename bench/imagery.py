"""Imagery benchmark: 224x224 crops from a COG, by the local source and by the stac source over
loopback HTTP (range requests), through the fetch stage's own fetch_one (read, scale, JPEG, atomic
write). Writes bench/results/imagery.md. Usage: python bench/imagery.py [--n 400] [--workers 2]
"""

from __future__ import annotations

import datetime
import json
import os
import random
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import rasterio
from rasterio.warp import transform, transform_bounds

from skyscript_db.etl.fetch import fetch_one
from skyscript_db.etl.imagery.base import ImageRequest, RetryPolicy
from skyscript_db.etl.imagery.local import LocalSource
from skyscript_db.etl.imagery.stac import StacSource

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from http_server import RangeServer  # noqa: E402  (the tests' Range-capable server)
from common import parser, report_path  # noqa: E402  (bench/common.py)

COG = ROOT.parent / "shared" / "data" / "imagery" / "sentinel2-ems-estuary-cog.tif"
SIZE, GSD = 224, 5.0


def requests(n: int, seed: int = 0) -> list[ImageRequest]:
    """n crops at random places whose centre lies on the raster, in its UTM zone (32632)."""
    rng = random.Random(seed)
    with rasterio.open(COG) as src:
        w, s, e, n_ = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    out = []
    for i in range(n):
        lon, lat = rng.uniform(w, e), rng.uniform(s, n_)
        (x,), (y,) = transform("EPSG:4326", "EPSG:32632", [lon], [lat])
        half = SIZE * GSD / 2
        box = transform_bounds("EPSG:32632", "EPSG:4326", x - half, y - half, x + half, y + half)
        out.append(ImageRequest(i, "node", i, "BENCH", SIZE, SIZE, GSD, 32632,
                                x - half, y - half, x + half, y + half, *box))
    return out


def run(source, reqs: list[ImageRequest], out: Path, workers: int) -> dict:
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        outcomes = list(pool.map(lambda r: fetch_one(source, r, None, out, RetryPolicy(), 90), reqs))
    seconds = time.perf_counter() - started
    ok = sum(o["status"] == "ok" for o in outcomes)
    return {"seconds": seconds, "ok": ok, "per_s": len(reqs) / seconds}


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--n", type=int, default=400)
    options.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = options.parse_args()
    n = 8 if args.quick else args.n
    reqs = requests(n)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shutil.copy(COG, tmp / COG.name)
        local = run(LocalSource(str(tmp / COG.name), (3, 2, 1)), reqs, tmp / "local", args.workers)
        with RangeServer(tmp) as server:
            with rasterio.open(COG) as src:
                bbox = list(transform_bounds(src.crs, "EPSG:4326", *src.bounds))
            item = {"type": "Feature", "stac_version": "1.0.0", "id": "ems", "bbox": bbox,
                    "geometry": None, "properties": {"datetime": "2021-06-01T00:00:00Z"},
                    "links": [], "assets": {"visual": {"href": f"{server.url}/ok/{COG.name}"}}}
            (tmp / "item.json").write_text(json.dumps(item))
            stac = run(StacSource(f"{server.url}/ok/item.json", None, ("visual",), (3, 2, 1)),
                       reqs, tmp / "stac", args.workers)
            cog_reads = [h for h in server.log if h.path.endswith(COG.name)]
    lines = [
        "# Imagery benchmark",
        "",
        f"Run {datetime.date.today()} on {os.cpu_count()} cores, {args.workers} worker threads. "
        f"{n} crops of {SIZE}×{SIZE} px at {GSD:g} m from `{COG.name}` (a real Sentinel-2 "
        "COG, EPSG:4326, reprojected to UTM 32N), each read, scaled to 8 bit, written as JPEG "
        "atomically — the fetch stage's own `fetch_one`.",
        "",
        "| source | seconds | images/s | ok |",
        "|---|---|---|---|",
        f"| local (file) | {local['seconds']:.2f} | {local['per_s']:.1f} | {local['ok']} |",
        f"| stac (static catalog + COG over HTTP on 127.0.0.1, range requests) | "
        f"{stac['seconds']:.2f} | {stac['per_s']:.1f} | {stac['ok']} |",
        "",
        f"stac / local time: {stac['seconds'] / local['seconds']:.2f}×. The server answered "
        f"{len(cog_reads):,} range requests for the COG, {sum(h.bytes for h in cog_reads) / 1e6:.1f} MB "
        f"in all (file: {COG.stat().st_size / 1e6:.2f} MB): GDAL's /vsicurl/ cache keeps the "
        "blocks it fetched for later opens in the same process, so a worker reads each block of "
        "a COG over the network once.",
        "",
    ]
    results = report_path(args, "imagery")
    results.write_text("\n".join(lines))
    print(results.read_text())


if __name__ == "__main__":
    main()
