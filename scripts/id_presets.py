"""Write the natural-caption seed tables from the iD editor's tagging schema (`make seeds`).

The OpenStreetMap community names common tag combinations for people in the iD editor's tagging
schema (npm @openstreetmap/id-tagging-schema, ISC licence). This script fetches the pinned version
with `npm pack`, checks its sha512, and writes compact tables under sql/seeds/id_presets/:

    presets.csv          preset_id, geometry (space-separated), match_score
    preset_tags.csv      preset_id, key, value ('*' = any value), required (false: one of the
                         addTags, which iD counts when present but does not require)
    fields.csv           key, type (one field per key: the one named like the key, else the first)
    names.parquet        lang, preset_id, name          (every language of the schema)
    field_labels.parquet lang, key, label
    field_options.parquet lang, key, value, label

Presets limited to a region (locationSet not worldwide), the fallbacks with no tags and those with
wildcard keys (addr:*) are left out. The build reads these files only; it never needs npm.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

PACKAGE = "@openstreetmap/id-tagging-schema"
VERSION = "7.2.0"
SHA512 = "7hjV8Xl3CoaO0u+M/Po0u33YIRahL8jEJtOzho189VOqqQQB3L9UGv2o93o/T4G3I0z5sFvQhn0apOz6+j253w=="
OUT = Path(__file__).resolve().parent.parent / "sql" / "seeds" / "id_presets"
WORLDWIDE = {"001", "Planet"}
# Field types whose key holds one value a caption can say (not names, links, addresses, dates).
FIELD_TYPES = {"combo", "typeCombo", "semiCombo", "check", "defaultCheck", "onewayCheck",
               "number", "integer", "roadspeed", "roadheight", "directionalCombo"}


def fetch(work: Path) -> Path:
    """The schema's dist/ folder, from the pinned, checksum-checked npm tarball."""
    subprocess.run(["npm", "pack", "--silent", f"{PACKAGE}@{VERSION}"], cwd=work, check=True,
                   capture_output=True)
    tarball = next(work.glob("*.tgz"))
    digest = base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if digest != SHA512:
        raise SystemExit(f"{tarball.name}: sha512 {digest} is not the pinned {SHA512}")
    with tarfile.open(tarball) as tar:
        tar.extractall(work, filter="data")
    return work / "package" / "dist"


def presets(dist: Path) -> dict[str, dict]:
    """The presets a caption may use: worldwide, with tags, no wildcard keys."""
    kept = {}
    for preset_id, p in json.loads((dist / "presets.json").read_text()).items():
        include = set(p.get("locationSet", {}).get("include", WORLDWIDE))
        if (p.get("tags") and include & WORLDWIDE and not preset_id.startswith("@")
                and not any("*" in k for k in p["tags"])):
            kept[preset_id] = p
    return kept


def fields(dist: Path) -> dict[str, tuple[str, str]]:
    """key -> (field id, type): the field named like its key, else the first by id."""
    chosen: dict[str, tuple[str, str]] = {}
    for field_id, f in sorted(json.loads((dist / "fields.json").read_text()).items()):
        key = f.get("key")
        if key and f.get("type") in FIELD_TYPES and (key not in chosen or field_id == key):
            chosen[key] = (field_id, f["type"])
    return chosen


def translations(dist: Path, kept: dict[str, dict], by_key: dict[str, tuple[str, str]]):
    """Rows of names, field labels and option labels for every language."""
    names, labels, options = [], [], []
    for file in sorted((dist / "translations").glob("*.min.json")):
        lang = file.name.removesuffix(".min.json")
        strings = json.loads(file.read_text()).get(lang, {}).get("presets", {})
        for preset_id, entry in strings.get("presets", {}).items():
            if preset_id in kept and entry.get("name"):
                names.append((lang, preset_id, entry["name"]))
        field_strings = strings.get("fields", {})
        for key, (field_id, _) in by_key.items():
            entry = field_strings.get(field_id, {})
            if entry.get("label"):
                labels.append((lang, key, entry["label"]))
            for value, label in (entry.get("options") or {}).items():
                title = label.get("title") if isinstance(label, dict) else label
                if title:
                    options.append((lang, key, value, title))
    return names, labels, options


def write_parquet(path: Path, columns: tuple[str, ...], rows: list[tuple]) -> None:
    table = pa.table({c: [r[i] for r in rows] for i, c in enumerate(columns)})
    pq.write_table(table, path, compression="zstd", compression_level=19)


def write_csv(path: Path, header: tuple[str, ...], rows: list[tuple]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        dist = fetch(Path(work))
        kept, by_key = presets(dist), fields(dist)
        names, labels, options = translations(dist, kept, by_key)
    write_csv(args.out / "presets.csv", ("preset_id", "geometry", "match_score"),
              [(i, " ".join(p["geometry"]), p.get("matchScore", 1.0))
               for i, p in sorted(kept.items())])
    write_csv(args.out / "preset_tags.csv", ("preset_id", "key", "value", "required"),
              [(i, k, v, k in p["tags"]) for i, p in sorted(kept.items())
               for k, v in (p.get("addTags", {}) | p["tags"]).items()])
    write_csv(args.out / "fields.csv", ("key", "type"),
              [(k, t) for k, (_, t) in sorted(by_key.items())])
    write_parquet(args.out / "names.parquet", ("lang", "preset_id", "name"), names)
    write_parquet(args.out / "field_labels.parquet", ("lang", "key", "label"), labels)
    write_parquet(args.out / "field_options.parquet", ("lang", "key", "value", "label"), options)
    (args.out / "SOURCE.md").write_text(
        f"Generated by scripts/id_presets.py (`make seeds`) from {PACKAGE} {VERSION} "
        f"(npm, sha512-{SHA512}).\nISC licence, copyright (c) iD Contributors: "
        "https://github.com/openstreetmap/id-tagging-schema/blob/main/LICENSE.md\n"
        f"{len(kept)} presets, {len(by_key)} field keys, "
        f"{len({r[0] for r in names})} languages.\n")
    print(f"{args.out}: {len(kept)} presets, {len(names):,} names, {len(labels):,} field labels, "
          f"{len(options):,} option labels")


if __name__ == "__main__":
    main()
