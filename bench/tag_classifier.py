"""Benchmark of the tag classifier with the offline encoder (MiniLM): quality and speed.

Quality: nested cross-validation by tag and by key (etl/tag_evaluation.py) beside the majority
class and the key majority on the same folds, then the stored model's own report.
Speed: stage tag_visibility on a fresh eleven-extracts database (every distinct tag embedded,
the classifier trained, every tag predicted, with an empty user cache), then the same stage
again with everything cached, then on a new database with only the user cache warm.

Writes bench/results/tag_classifier.md.
"""

from __future__ import annotations

import datetime
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import skyscript_db
from skyscript_db.config import BuildConfig
from skyscript_db.etl import pipeline, tag_classifier, tag_evaluation, tag_visibility
from skyscript_db.models import load_text_encoder

from common import ELEVEN, SMALL, parser, report_path  # bench/common.py



HELD_OUT = (("natural", "water"), ("building", "yes"))


def labelled_features(db: Path) -> tuple[np.ndarray, int, np.ndarray, np.ndarray, np.ndarray,
                                          np.ndarray]:
    """The stage's features of every label (from the texts the stage cached) and their vector
    width, with keys, values, visible and GSD class (-1 where not visible)."""
    with skyscript_db.connect(db) as con:
        encoder = load_text_encoder(BuildConfig().tag_encoder)
        tag_visibility.prepare(con, encoder)
        rows = tag_visibility._features(con, encoder.encoder_id, labelled=True)
    visible = rows["visible"].to_numpy(zero_copy_only=False).astype(int)
    gsd = np.array([tag_classifier.gsd_class(g) if v else -1
                    for g, v in zip(rows["max_gsd_m"].to_pylist(), visible)])
    return (*tag_visibility._matrix(rows), rows["key"].to_numpy(zero_copy_only=False),
            rows["value"].to_numpy(zero_copy_only=False), visible, gsd)


def quality(db: Path, seed: int, every: int = 1) -> list[str]:
    """Nested CV by tag and by key, both stages, with baselines; the held-out tags' verdicts.
    every: use every n-th label only (--quick)."""
    x, vector_width, *columns = labelled_features(db)
    x, keys, values, visible, gsd = (a[::every] for a in (x, *columns))
    shown = visible == 1
    stages = {"stage 1 (visible?)": (x, visible, keys, "accuracy"),
              "stage 2 (largest GSD)": (x[shown], gsd[shown], keys[shown], "f1_macro")}
    lines = ["| stage | folds | model | accuracy | macro-F1 |", "|---|---|---|---|---|"]
    verdicts: dict[str, list[str]] = {}
    for stage, (features, y, groups, scoring) in stages.items():
        for protocol in tag_evaluation.PROTOCOLS:
            started = time.perf_counter()
            result = tag_evaluation.nested_cv(features, y, groups, scoring, protocol, vector_width,
                                               seed)
            print(f"{stage} by {protocol}: {time.perf_counter() - started:.0f} s", flush=True)
            for name, score in result["scores"].items():
                bold = "**" if name == "model" else ""
                label = "PCA + logistic regression" if name == "model" else name
                lines.append(f"| {stage} | by {protocol} | {bold}{label}{bold} | "
                             f"{bold}{score['accuracy']:.3f}{bold} | "
                             f"{bold}{score['macro_f1']:.3f}{bold} |")
            names = (["not visible", "visible"] if scoring == "accuracy"
                     else [f"{g:g} m" for g in tag_classifier.GSD_CLASSES])
            stage_values = values if scoring == "accuracy" else values[shown]
            for key, value in HELD_OUT:
                i = np.flatnonzero((groups == key) & (stage_values == value))
                if len(i):
                    verdicts.setdefault(f"{key}={value}", []).append(
                        f"{stage} by {protocol}: {names[result['predicted'][i[0]]]} "
                        f"(label {names[y[i[0]]]})")
    lines += ["", "Out-of-fold verdicts of two obvious tags (each judged without its own label; "
              "by key, without any label of its key):", ""]
    lines += [f"- `{tag}`: " + "; ".join(v) for tag, v in verdicts.items()]
    return lines


def stage_run(db: Path) -> dict:
    with skyscript_db.connect(db, read_only=True) as con:
        seconds, info = con.execute("select seconds, info from stage_runs where stage = "
                                    "'tag_visibility' order by finished_at desc limit 1"
                                    ).fetchone()
    return json.loads(info) | {"seconds": seconds}


def time_stage(pbf: Path, db: Path) -> float:
    """Wall seconds of stage tag_visibility on `db`, the process's loading excluded."""
    started = time.perf_counter()
    pipeline.build(pbf, db, BuildConfig(), only="tag_visibility")
    return time.perf_counter() - started


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--repeat", type=int, default=3, help="Cached reruns to time.")
    args = options.parse_args()
    pbf = ELEVEN
    if args.quick:  # the caller's user cache (a fit is a minute) and a one-point grid
        pbf, args.repeat = SMALL, 1
        tag_classifier.PCA_SIZES, tag_classifier.C_VALUES = (64,), (1.0,)
        tag_classifier.FACT_WEIGHTS = (0.3,)
    with tempfile.TemporaryDirectory() as tmp:
        if not args.quick:
            os.environ["SKYSCRIPT_CACHE"] = str(Path(tmp) / "cache")  # an empty user cache
        db = Path(tmp) / "eleven.duckdb"
        pipeline.build(pbf, db, only="ingest")
        pipeline.build(pbf, db, only="tag_stats")
        first_wall = time_stage(pbf, db)
        first = stage_run(db)
        cached_wall = [time_stage(pbf, db) for _ in range(args.repeat)]
        cached = stage_run(db)
        fresh = Path(tmp) / "fresh.duckdb"  # a new database: only the user cache is warm
        pipeline.build(pbf, fresh, only="ingest")
        pipeline.build(pbf, fresh, only="tag_stats")
        fresh_wall = time_stage(pbf, fresh)
        fresh_run = stage_run(fresh)
        with skyscript_db.connect(db, read_only=True) as con:
            report = json.loads(con.execute("select report from tag_models").fetchone()[0])
            distinct_tags = con.execute("select count(*) from tag_stats").fetchone()[0]
        quality_lines = quality(db, report["seed"], every=4 if args.quick else 1)
    lines = [
        "# Tag classifier benchmark",
        "",
        f"Run {datetime.date.today()} on {os.cpu_count()} cores with the offline encoder "
        f"({report['encoder_id']}); labelled set sql/seeds/tag_labels.csv. Features: the "
        "embeddings of \"key value\" and of the key, reduced by PCA, beside the tag's facts "
        "(for the tag and its key, from seed tag_geometry.csv: the shares of points, lines and "
        "polygons, and of objects inside a building, also tagged building, also tagged highway; "
        "the geometries of the iD editor's presets for the tag and the key; the key's field "
        "kind; yes/no and numeric values), standardised and weighted; then logistic "
        "regression; PCA size, the facts' weight "
        f"({', '.join(map(str, tag_classifier.FACT_WEIGHTS))}), C and class weights chosen by "
        "5-fold CV, then refit on all labels.",
        "",
        "## Quality: nested 5-fold cross-validation, by tag and by key",
        "",
        "The whole fitting procedure (the grid search over PCA size, the facts' weight, C and "
        "class weights included) runs inside each outer training part, so no score saw its test "
        "labels. *By tag*: stratified folds over labels (a key's other values are in training). "
        "*By key*: no key in both parts (inner folds too): the accuracy on keys the labels "
        "never saw. Baselines on the same outer folds: the majority class, and the key "
        "majority (a test tag gets its key's most frequent label in training; the overall "
        "majority when the key is not there, which is always the case by key).",
        "",
    ]
    lines += quality_lines
    lines += ["", "Targets (issue 14): by key, stage 1 accuracy ≥ 0.80 and stage 2 macro-F1 ≥ "
              "0.50.", "",
              "A caveat on the by-key figures: the three facts of where a tag's objects stand "
              "(inside a building, also building, also highway) were added after reading the "
              "by-key errors on these very labels (whole keys such as `shop`, `building` and "
              "`barrier` judged wrong), so those figures carry some selection optimism that "
              "nested CV does not remove. The facts' weight is chosen inside each fold. Before "
              "them (weight fixed at 0.1): 0.739 and 0.500.", "",
              "## The stored model's own report", "",
              "Selection and scores on the same tag-level folds (optimistic), as `skyscript-db "
              "tags report` shows them.", ""]
    lines += [tag_classifier.report_markdown(report),
              "## Speed: every distinct tag of the eleven extracts", "",
              f"{distinct_tags:,} distinct tags; {first['by_rule']:,} decided by rule, "
              f"{first['by_label']:,} by label, {first['by_model']:,} by the model.", "",
              "| run | wall s (incl. loading) | stage s | texts embedded | embedding s | "
              "model s (train or load) |", "|---|---|---|---|---|---|",
              f"| first (empty cache) | {first_wall:.1f} | {first['seconds']:.1f} | "
              f"{first['texts_embedded']:,} | {first['embed_s']:.1f} | {first['model_s']:.1f} |",
              f"| cached (median of {args.repeat}) | {statistics.median(cached_wall):.2f} | "
              f"{cached['seconds']:.2f} | {cached['texts_embedded']:,} | {cached['embed_s']:.2f} | "
              f"{cached['model_s']:.2f} |",
              f"| new database, user cache warm | {fresh_wall:.2f} | {fresh_run['seconds']:.2f} | "
              f"{fresh_run['texts_embedded']:,} | {fresh_run['embed_s']:.2f} | "
              f"{fresh_run['model_s']:.2f} |", "",
              "Targets: ≤ 2 min the first time, ≤ 5 s cached (in the database or, for a new "
              "database, in the user cache: etl/tag_cache.py).", ""]
    results = report_path(args, "tag_classifier")
    results.write_text("\n".join(lines))
    print(results.read_text())


if __name__ == "__main__":
    main()
