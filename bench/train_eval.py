"""Benchmark of export, train and eval wired together (make bench-train).

1. AID (30 real aerial scene classes, 50 images each, ../shared/data/benchmarks/aid-150px): a tiny
   CLIP trained from scratch by `skyscript_db.training` (open_clip_train) on 40 images per class
   captioned "a satellite image of {class}", then zero-shot on the other 10 per class with the
   SkyScript prompts, and retrieval on the same held-out images. Chance is 1/30.
2. Export speed: every embedded pair of a render-imagery build of the eleven extracts, to CSV and
   WebDataset shards.

Writes bench/results/train_eval.md.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import random
import tempfile
import time
from pathlib import Path

import skyscript_db
from skyscript_db.config import BuildConfig
from skyscript_db.config import ExportConfig, FetchConfig, Options
from skyscript_db.etl import pipeline
from skyscript_db.models import TINY, ModelSpec
from skyscript_db.evaluate import class_name, retrieval, zero_shot
from skyscript_db.training import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
AID = ROOT.parent / "shared" / "data" / "benchmarks" / "aid-150px" / "AID"
ELEVEN = ROOT.parent / "shared" / "data" / "osm" / "eleven-extracts-merged.osm.pbf"
RESULTS = ROOT / "bench" / "results" / "train_eval.md"
TRAIN_PER_CLASS = 40


def split_aid(work: Path, seed: int) -> tuple[Path, Path, Path]:
    """train.csv (40 per class, captioned), test/<Class>/ (the other 10) and test.csv."""
    rng = random.Random(seed)
    test_root = work / "test"
    train_rows, test_rows = [], []
    for folder in sorted(p for p in AID.iterdir() if p.is_dir()):
        images = sorted(folder.glob("*.jpg"))
        rng.shuffle(images)
        caption = f"a satellite image of {class_name(folder.name)}"
        train_rows += [(str(p), caption) for p in images[:TRAIN_PER_CLASS]]
        (test_root / folder.name).mkdir(parents=True)
        for image in images[TRAIN_PER_CLASS:]:
            (test_root / folder.name / image.name).symlink_to(image)
            test_rows.append((str(image), caption))
    paths = []
    for name, rows in (("train.csv", train_rows), ("test.csv", test_rows)):
        path = work / name
        with path.open("w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(("filepath", "title"))
            writer.writerows(rows)
        paths.append(path)
    return paths[0], test_root, paths[1]


def aid_run(work: Path, epochs: int, seed: int) -> dict:
    train_csv, test_root, test_csv = split_aid(work, seed)
    started = time.perf_counter()
    checkpoint = train(TrainConfig(train_csv, work / "runs" / "aid", model=TINY, epochs=epochs,
                                   batch_size=64, lr=1e-3, warmup=50, workers=2, seed=seed))
    train_s = time.perf_counter() - started
    spec = ModelSpec(TINY, str(checkpoint))
    untrained = zero_shot(test_root, ModelSpec(TINY, seed=seed))
    trained = zero_shot(test_root, spec)
    found = retrieval(test_csv, spec)
    return {"epochs": epochs, "train_s": train_s, "trained": trained, "untrained": untrained,
            "retrieval": found}


def export_run(work: Path) -> dict:
    db = work / "eleven.duckdb"
    config = BuildConfig(imagery="render")
    skyscript_db.build(ELEVEN, db, config)
    started = time.perf_counter()
    skyscript_db.build(ELEVEN, db, config, fetch=FetchConfig())
    fetch_s = time.perf_counter() - started
    skyscript_db.build(ELEVEN, db, config, fetch=True, embed=True)
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        options = Options(export=ExportConfig(work / "export", shard_size=1000))
        manifest = pipeline.run(db, options, ["export"], only="export")["export"].info
        timings.append(time.perf_counter() - started)
    size = sum(p.stat().st_size for p in (work / "export").rglob("*.tar"))
    return {"pairs": manifest["pairs"], "splits": manifest["splits"], "seconds": min(timings),
            "fetch_s": fetch_s, "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-export", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        aid = aid_run(Path(tmp), args.epochs, args.seed)
    exported = None
    if not args.skip_export:
        with tempfile.TemporaryDirectory() as tmp:
            exported = export_run(Path(tmp))
    t, u, r = aid["trained"], aid["untrained"], aid["retrieval"]
    lines = [
        "# Export, train and evaluate benchmark", "",
        f"Run {datetime.date.today()} on {os.cpu_count()} cores, CPU only.", "",
        "## AID, tiny CLIP from scratch", "",
        f"{TRAIN_PER_CLASS} images per class ({TRAIN_PER_CLASS * 30}) captioned \"a satellite "
        f"image of {{class}}\", trained with open_clip_train through `skyscript_db.training` "
        f"(skyscript-tiny, 64 px, random 90° rotations, {aid['epochs']} epochs, batch 64, lr 1e-3, "
        f"seed {args.seed}) in {aid['train_s']:.0f} s; zero-shot on the other "
        f"{t['images']} images with the SkyScript prompts.", "",
        "| model | top-1 | top-5 | eval images/s |", "|---|---|---|---|",
        f"| trained | **{t['top1']:.3f}** | {t['top5']:.3f} | {t['images_per_s']:.0f} |",
        f"| same architecture, random weights | {u['top1']:.3f} | {u['top5']:.3f} | "
        f"{u['images_per_s']:.0f} |",
        f"| chance | {1 / 30:.3f} | {5 / 30:.3f} | |", "",
        f"Retrieval on the held-out images with their captions (30 distinct captions: image→text "
        f"finds any copy of its class's caption, text→image must pick its own image among ten "
        f"of the class): image→text R@1 {r['image_to_text_R@1']:.3f}, text→image R@1 "
        f"{r['text_to_image_R@1']:.3f}, mean recall {r['mean_recall']:.3f} "
        f"({r['images_per_s']:.0f} images/s).", "",
        "Per-class top-1 (trained): " + ", ".join(
            f"{c} {a:.1f}" for c, a in t["per_class"].items()) + ".", ""]
    if exported:
        splits = ", ".join(f"{s} {v['pairs']:,}" for s, v in exported["splits"].items())
        lines += ["## Export speed", "",
                  f"Eleven extracts, render imagery, every embedded pair: {exported['pairs']:,} "
                  f"pairs ({splits}) to CSV and WebDataset shards of 1,000 "
                  f"({exported['bytes'] / 2**20:.0f} MiB) in "
                  f"**{exported['seconds']:.1f} s** (best of 2), "
                  f"{exported['pairs'] / exported['seconds']:,.0f} pairs/s. "
                  f"(Fetching the render images took {exported['fetch_s']:.0f} s.)", ""]
    RESULTS.write_text("\n".join(lines))
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
