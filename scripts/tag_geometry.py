"""Write seed sql/seeds/tag_geometry.csv: how OSM draws every labelled tag and key.

The tag classifier's facts (sql/20_tag_visibility.sql, section tag_facts) include the shares of
points, lines and polygons among the objects carrying a tag and its key, and of those inside a
building, also tagged building, also tagged highway. For the labelled tags they come from this
seed, counted once on a large reference database, so the model trained on the labels is the same
whichever database trains it:

    skyscript-db build ../shared/data/osm/eleven-extracts-merged.osm.pbf --db /tmp/ref.duckdb
    python scripts/tag_geometry.py /tmp/ref.duckdb

Columns: key, value ('*': all of the key's values), n_points, n_lines, n_polygons, n_in_building,
n_with_building, n_with_highway (tag_stats' columns).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import skyscript_db
from skyscript_db import queries
from skyscript_db.etl.tag_visibility import SEED_FILES, SQL

SEED = Path(__file__).resolve().parents[1] / "sql" / "seeds" / "tag_geometry.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", type=Path, help="a database with tag_stats, built from a big extract")
    args = parser.parse_args()
    q = queries.load(SQL)
    with skyscript_db.connect(args.db, read_only=True) as con:
        q["load_labels"].run(con, labels_csv=queries.seed_path(SEED_FILES["labels_csv"]))
        result = q["geometry_seed"].run(con)
        header, rows = [c[0] for c in result.description], result.fetchall()
    with SEED.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([header, *rows])
    print(f"{SEED}: {len(rows)} rows from {args.db}")


if __name__ == "__main__":
    main()
