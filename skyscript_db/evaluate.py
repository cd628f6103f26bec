"""Evaluation as in the paper: zero-shot scene classification and image-text retrieval.

Zero-shot: a folder of class folders; each class's text vector is the mean of its prompts (the
SkyScript templates by default), images go to the most similar class. Retrieval: a CSV of image
paths and captions (an export split, or any such file); recall@1/5/10 both ways and their mean.
The model is any that `skyscript_db.models` loads (a trained checkpoint: `pretrained=PATH`).
Unreadable images are skipped and listed in the report, never silently dropped; an empty class
is an error.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from skyscript_db.errors import EvalError
from skyscript_db.models import ImageTextEncoder, ModelSpec, load_encoder

log = logging.getLogger(__name__)

TEMPLATES = ("a satellite photo of {}.", "a satellite image of {}")
RETRIEVAL_PREFIX = "a satellite image. "
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}
ProgressCallback = Callable[[int, int], None]


@dataclass
class _Images:
    vectors: np.ndarray
    kept: list[int]  # indexes of the readable images
    skipped: list[dict[str, str]]
    seconds: float


def class_name(folder: str) -> str:
    """`StorageTanks` / `storage_tanks` -> "storage tanks" (the paper's class names)."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", folder).replace("_", " ").replace("-", " ")
    return " ".join(spaced.lower().split())


def class_names(classes: list[Path], file: Path | None = None) -> list[str]:
    """The names the prompts use, one per class folder (in sorted order): from the folder names,
    or from `file` (clip_benchmark's convention): a text file with one name per line in folder
    order, or JSON, a list in folder order or {folder: name}."""
    if file is None:
        return [class_name(c.name) for c in classes]
    try:
        text = Path(file).read_text(encoding="utf-8")
        given = json.loads(text) if Path(file).suffix == ".json" else \
            [line.strip() for line in text.splitlines() if line.strip()]
    except (OSError, ValueError) as e:
        raise EvalError(f"{file}: cannot read class names ({e})") from e
    if isinstance(given, dict):
        missing = [c.name for c in classes if c.name not in given]
        if missing:
            raise EvalError(f"{file}: no name for class folder(s) {', '.join(missing)}")
        return [str(given[c.name]) for c in classes]
    if not isinstance(given, list) or len(given) != len(classes):
        raise EvalError(f"{file}: {len(given)} class names for {len(classes)} class folders "
                        "(one per folder, in sorted folder order)")
    return [str(name) for name in given]


def zero_shot(folder: Path, spec: ModelSpec, templates: tuple[str, ...] = TEMPLATES,
              batch: int = 64, on_progress: ProgressCallback | None = None,
              device: str = "auto", classnames: Path | None = None) -> dict[str, Any]:
    """Top-1, top-5, per-class accuracy and the confusion matrix on a folder of class folders;
    the prompts name each class as `class_names` says."""
    classes = sorted(p for p in Path(folder).iterdir() if p.is_dir()) if folder.is_dir() else []
    if len(classes) < 2:
        raise EvalError(f"{folder}: need a folder with at least two class folders")
    paths, labels = [], []
    for label, directory in enumerate(classes):
        images = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise EvalError(f"{directory}: class folder has no images")
        paths += images
        labels += [label] * len(images)
    names = class_names(classes, classnames)
    encoder = load_encoder(spec, device)
    weights = class_vectors(encoder, names, templates)
    images = _encode_images(encoder, paths, batch, on_progress)
    truth = np.asarray(labels)[images.kept]
    empty = sorted(set(range(len(classes))) - set(truth.tolist()))
    if empty:
        raise EvalError(f"no readable image in class folder(s) "
                        f"{', '.join(str(classes[i]) for i in empty)}")
    ranked = np.argsort(-(images.vectors @ weights.T), axis=1, kind="stable")
    top5 = ranked[:, :min(5, len(classes))]
    confusion = np.zeros((len(classes), len(classes)), dtype=int)
    np.add.at(confusion, (truth, ranked[:, 0]), 1)
    per_class = confusion.diagonal() / confusion.sum(axis=1)
    return {
        "task": "zero-shot classification", "data": str(folder), "model": spec.model_id,
        "untrained": spec.untrained, "templates": list(templates), "classes": names,
        "images": len(truth), "skipped": images.skipped,
        "top1": float((ranked[:, 0] == truth).mean()),
        "top5": float((top5 == truth[:, None]).any(axis=1).mean()),
        "per_class": {n: float(a) for n, a in zip(names, per_class)},
        "confusion": confusion.tolist(),
        "images_per_s": len(paths) / images.seconds,
    }


def class_vectors(encoder: ImageTextEncoder, names: list[str],
                  templates: tuple[str, ...]) -> np.ndarray:
    """Each class's mean prompt embedding, re-normalised (CLIP's zero-shot classifier)."""
    vectors = []
    for name in names:
        mean = encoder.texts([t.format(name) for t in templates]).mean(axis=0)
        vectors.append(mean / np.linalg.norm(mean))
    return np.stack(vectors)


def retrieval(csv_path: Path, spec: ModelSpec, image_key: str = "filepath",
              caption_key: str = "title", prefix: str = "", batch: int = 64,
              on_progress: ProgressCallback | None = None, device: str = "auto") -> dict[str, Any]:
    """Recall@1/5/10 image->text and text->image over the pairs of a CSV."""
    rows = _read_pairs(csv_path, image_key, caption_key)
    encoder = load_encoder(spec, device)
    base = csv_path.parent
    images = _encode_images(encoder, [base / r[image_key] for r in rows], batch, on_progress)
    captions = [prefix + rows[i][caption_key] for i in images.kept]
    texts = np.concatenate([encoder.texts(captions[i:i + batch])
                            for i in range(0, len(captions), batch)])
    similarity = images.vectors @ texts.T
    report = {"task": "retrieval", "data": str(csv_path), "model": spec.model_id,
              "untrained": spec.untrained, "caption": caption_key, "prefix": prefix,
              "pairs": len(captions), "skipped": images.skipped,
              "images_per_s": len(rows) / images.seconds}
    recalls = []
    for direction, scores in (("image_to_text", similarity), ("text_to_image", similarity.T)):
        # rank of the true partner: how many candidates score strictly higher
        own = scores.diagonal()[:, None]
        rank = (scores > own).sum(axis=1)
        for k in (1, 5, 10):
            report[f"{direction}_R@{k}"] = float((rank < k).mean())
            recalls.append(report[f"{direction}_R@{k}"])
    report["mean_recall"] = float(np.mean(recalls))
    return report


def _read_pairs(path: Path, image_key: str, caption_key: str) -> list[dict[str, str]]:
    if not path.is_file():
        raise EvalError(f"{path}: no such CSV file")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {image_key, caption_key} - set(reader.fieldnames or ())
        if missing:
            raise EvalError(f"{path}: no column {', '.join(sorted(missing))} "
                            f"(columns: {', '.join(reader.fieldnames or ())})")
        rows = list(reader)
    if len(rows) < 2:
        raise EvalError(f"{path}: retrieval needs at least two pairs, found {len(rows)}")
    return rows


def _encode_images(encoder: ImageTextEncoder, paths: list[Path], batch: int,
                   on_progress: ProgressCallback | None) -> _Images:
    started = time.perf_counter()
    vectors, kept, skipped = [], [], []
    for start in range(0, len(paths), batch):
        loaded = list(_open(paths[start:start + batch], start, skipped))
        if loaded:
            kept += [i for i, _ in loaded]
            vectors.append(encoder.images([image for _, image in loaded]))
        if on_progress:
            on_progress(min(start + batch, len(paths)), len(paths))
    for item in skipped:
        log.warning("skipped %s: %s", item["path"], item["error"])
    if not kept:
        raise EvalError("no readable image at all")
    return _Images(np.concatenate(vectors), kept, skipped, time.perf_counter() - started)


def _open(paths: list[Path], offset: int,
          skipped: list[dict[str, str]]) -> Iterator[tuple[int, Image.Image]]:
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as image:
                yield offset + i, image.convert("RGB")
        except (OSError, UnidentifiedImageError) as e:
            skipped.append({"path": str(path), "error": str(e).splitlines()[0]})


def write_report(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """<out>.json and <out>.md."""
    out.parent.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out.with_suffix(".json"), out.with_suffix(".md")
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(markdown(report))
    return json_path, md_path


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# {report['task']}: {report['data']}", "",
             f"Model {report['model']}" + (" (UNTRAINED)" if report["untrained"] else "") + "; "
             f"{report.get('images', report.get('pairs'))} items, "
             f"{report['images_per_s']:.1f} images/s; {len(report['skipped'])} skipped.", ""]
    if report["task"] == "retrieval":
        lines += ["| direction | R@1 | R@5 | R@10 |", "|---|---|---|---|"]
        for d in ("image_to_text", "text_to_image"):
            lines.append(f"| {d.replace('_', ' ')} | " + " | ".join(
                f"{report[f'{d}_R@{k}']:.3f}" for k in (1, 5, 10)) + " |")
        lines += ["", f"Mean recall: **{report['mean_recall']:.3f}**"]
    else:
        lines += [f"Top-1 **{report['top1']:.3f}**, top-5 {report['top5']:.3f}; prompts: "
                  + "; ".join(f"`{t}`" for t in report["templates"]), "",
                  "| class | accuracy |", "|---|---|"]
        lines += [f"| {c} | {a:.3f} |" for c, a in report["per_class"].items()]
        names = report["classes"]
        lines += ["", "Confusion (rows: true class, columns: predicted):", "",
                  "| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        lines += [f"| {n} | " + " | ".join(str(v) for v in row) + " |"
                  for n, row in zip(names, report["confusion"])]
    if report["skipped"]:
        lines += ["", "Skipped:", ""] + [f"- {s['path']}: {s['error']}" for s in report["skipped"]]
    return "\n".join(lines) + "\n"
