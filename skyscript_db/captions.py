"""Captions from tags in Python, by the very SQL the captions stage runs (sql/70_captions.sql)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import duckdb

from skyscript_db import queries
from skyscript_db.errors import InputError

# The captions stage's SQL file and the seed tables it reads (parameter -> file); the stage in
# etl/pipeline.py runs the same file with the same seeds.
SQL_FILE = "70_captions.sql"
SEEDS = {"renames_csv": "caption_renames.csv", "styles_csv": "caption_key_styles.csv"}


def caption(center_tags: Mapping[str, str],
            surrounding: Iterable[Mapping[str, str]] = ()) -> tuple[str, str]:
    """(title, title_multi_objects) for an object's tags and, in order, its surrounding objects'.

    The tags are taken as already filtered for visibility (the stage drops invisible ones first).

    >>> caption({"amenity": "fountain"}, [{"natural": "tree"}, {"highway": "footway"}])
    ('amenity of fountain', 'amenity of fountain, surrounded by natural tree; road of footway')
    """
    if not center_tags:
        raise InputError("center_tags is empty: an object with no visible tag is not described")
    objects = [center_tags, *surrounding]
    rows = [(0, rank, pos, key, value)
            for rank, tags in enumerate(objects)
            for pos, (key, value) in enumerate(tags.items(), start=1)]
    sections = queries.load(SQL_FILE)
    with duckdb.connect() as con:
        for name, (param, seed) in zip(("load_renames", "load_styles"), SEEDS.items()):
            sections[name].run(con, **{param: queries.seed_path(seed)})
        con.execute("create temp table caption_input (pair_id bigint, rank integer, "
                    "tag_pos integer, key varchar, value varchar)")
        con.executemany("insert into caption_input values (?, ?, ?, ?, ?)", rows)
        sections["captions"].run(con)
        return con.execute("select title, title_multi_objects from captions").fetchone()
