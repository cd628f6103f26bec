"""Captions from tags in Python, by the very SQL the captions stage runs (sql/70_captions.sql),
and the names of the caption columns that embed and export take."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

import duckdb

from skyscript_db import queries
from skyscript_db.errors import ConfigError, InputError

# The caption columns of table captions; 'rewrite:<model>' names a model's rewrites.
CAPTIONS = ("title", "title_multi_objects", "title_natural", "title_multi_objects_natural")


def check_caption(name: str, option: str) -> None:
    """A caption name embed and export accept, or a ConfigError naming the option."""
    if name not in CAPTIONS and not (name.startswith("rewrite:") and len(name) > 8):
        raise ConfigError(f"{option} must be one of {', '.join(CAPTIONS)} or rewrite:MODEL, "
                          f"got {name!r}")


# The captions stage's SQL file and the seed files it reads (parameter -> file); the stage in
# etl/pipeline.py runs the same file with the same seeds.
SQL_FILE = "70_captions.sql"
# Rewrites by a language model (stage rewrite_captions) and the caption_texts view of all captions.
REWRITES_SQL = "caption_rewrites.sql"
SEEDS = {
    "renames_csv": "caption_renames.csv",
    "styles_csv": "caption_key_styles.csv",
    "languages_csv": "caption_languages.csv",
    "presets_csv": "id_presets/presets.csv",
    "preset_tags_csv": "id_presets/preset_tags.csv",
    "fields_csv": "id_presets/fields.csv",
    "names_parquet": "id_presets/names.parquet",
    "labels_parquet": "id_presets/field_labels.parquet",
    "options_parquet": "id_presets/field_options.parquet",
}
# The sections that turn caption_slots and caption_input into captions (the stage's others read
# the database).
FROM_INPUT = ("in_order", "load_renames", "load_styles", "lang_rank", "check_language",
              "load_language", "load_presets", "load_preset_tags", "load_fields",
              "load_field_options", "tag_phrases", "captions", "object_presets", "natural_objects",
              "natural_captions")
Tags = Mapping[str, str]


class Captions(NamedTuple):
    title: str
    title_multi_objects: str
    title_natural: str
    title_multi_objects_natural: str


def caption(center_tags: Tags, surrounding: Iterable[Tags] = (), *, kind: str = "polygon",
            language: str = "en", max_chars: int = 300) -> Captions:
    """The four captions of an object's tags and, nearest first, its surrounding objects'.

    The tags are taken as already filtered for visibility (the stage drops invisible ones first);
    `kind` is every object's geometry ('point', 'line' or 'polygon'), which presets depend on.

    >>> caption({"amenity": "fountain"}, [{"natural": "tree"}, {"highway": "footway"}])[:2]
    ('amenity of fountain', 'amenity of fountain, surrounded by natural tree; road of footway')
    >>> caption({"leisure": "pitch", "sport": "tennis", "surface": "clay"}).title_natural
    'Tennis Court with clay surface'
    """
    if not center_tags:
        raise InputError("center_tags is empty: an object with no visible tag is not described")
    objects = [center_tags, *surrounding]
    slots = [(0, rank, rank, float(rank)) for rank in range(len(objects))]
    tags = [(rank, pos, key, value, kind, 0.0) for rank, object_tags in enumerate(objects)
            for pos, (key, value) in enumerate(object_tags.items(), start=1)]
    params = {name: queries.seed_path(seed) for name, seed in SEEDS.items()}
    params |= {"caption_language": language, "caption_max_chars": max_chars}
    sections = queries.load(SQL_FILE)
    with duckdb.connect() as con:
        con.execute("create temp table caption_slots (pair_id bigint, rank bigint, "
                    "object_id bigint, dist double)")
        con.execute("create temp table caption_input (object_id bigint, tag_pos bigint, "
                    "key varchar, value varchar, kind varchar, size double)")
        con.executemany("insert into caption_slots values (?, ?, ?, ?)", slots)
        con.executemany("insert into caption_input values (?, ?, ?, ?, ?, ?)", tags)
        for name in FROM_INPUT:
            query = sections[name]
            query.run(con, **{p: params[p] for p in query.params})
        return Captions(*con.execute(
            "select title, title_multi_objects, title_natural, title_multi_objects_natural "
            "from captions").fetchone())


def create_caption_texts(con: duckdb.DuckDBPyConnection) -> None:
    """The caption_texts view (every caption by name) and the rewrites table it reads, if new."""
    rewrites = queries.load(REWRITES_SQL)
    rewrites["create"].run(con)
    rewrites["caption_texts"].run(con)
