"""Captions: the paper's examples exactly, and the stage's output on real data."""

from __future__ import annotations

import shutil

import pytest

import skyscript_db
from skyscript_db.errors import InputError

from conftest import HELSINKI, run_stage

PAPER_EXAMPLES = [
    ({"landuse": "quarry", "resource": "bauxite"}, [],
     "landuse of quarry, resource of bauxite", "landuse of quarry with resource of bauxite"),
    ({"landuse": "farmland", "crop": "cotton"}, [],
     "landuse of farmland, crop of cotton", "landuse of farmland with crop of cotton"),
    ({"power": "plant", "plant:source": "solar", "plant:method": "thermal",
      "plant:output:electricity": "19.9 MW"}, [],
     "power plant, plant source of solar, plant method of thermal, "
     "plant output electricity of 19.9 MW",
     "power plant with plant source of solar and plant method of thermal and "
     "plant output electricity of 19.9 MW"),
    ({"power": "pole"}, [{"power": "minor_line", "cables": "3", "voltage": "16000"}],
     "power pole", "power pole, surrounded by power minor line with cables of 3 and voltage of 16000"),
    ({"amenity": "fountain"}, [{"natural": "tree"}, {"highway": "footway"}],
     "amenity of fountain", "amenity of fountain, surrounded by natural tree; road of footway"),
    ({"man_made": "pier"}, [{"waterway": "river"}],
     "man made pier", "man made pier, surrounded by waterway of river"),
]


@pytest.mark.parametrize("center, around, title, multi", PAPER_EXAMPLES,
                         ids=[e[2].split(",")[0] for e in PAPER_EXAMPLES])
def test_paper_examples(center, around, title, multi):
    assert skyscript_db.caption(center, around)[:2] == (title, multi)


def test_key_styles_and_primary_key_first():
    # smoothness joins with "is", lanes with "of"; highway (renamed road) is the primary key.
    assert skyscript_db.caption({"lanes": "2", "smoothness": "good", "highway": "residential"})[:2] == (
        "road of residential, lanes of 2, smoothness is good",
        "road of residential with lanes of 2 and smoothness is good",
    )


# The examples, then presets picked across keys: (tags, geometry, natural title).
PRESET_EXAMPLES = [
    ({"highway": "service", "service": "driveway"}, "line", "Driveway"),
    ({"leisure": "pitch", "sport": "tennis"}, "polygon", "Tennis Court"),
    ({"historic": "aircraft"}, "point", "Historic Aircraft"),
    ({"building": "hangar"}, "polygon", "Hangar Building"),
    ({"amenity": "parking"}, "polygon", "Parking"),
    ({"highway": "footway", "footway": "sidewalk", "surface": "paving_stones"}, "line",
     "Sidewalk with paving stones surface"),  # addTags: highway=footway counts
    ({"power": "pole"}, "point", "Power Pole"),
    ({"natural": "tree", "leaf_type": "broadleaved"}, "point", "Broadleaved Tree"),
    ({"amenity": "parking", "parking": "surface", "surface": "asphalt"}, "polygon",
     "Surface Parking Lot with asphalt surface"),
    ({"highway": "crossing", "crossing": "marked"}, "point", "Marked Crossing"),
    ({"landuse": "residential"}, "polygon", "Residential Area"),
    ({"building": "apartments", "roof:shape": "flat"}, "polygon",
     "Apartment Building with flat roof shape"),
    ({"highway": "residential", "lanes": "2", "surface": "asphalt", "lit": "yes", "oneway": "no"},
     "line", "Residential Road with 2 lanes, asphalt surface, lit"),  # a 'no' check is not said
    ({"railway": "rail", "electrified": "contact_line"}, "line",
     "Train Track with contact line electrification"),
    ({"power": "plant", "plant:source": "solar", "plant:output:electricity": "19.9 MW"},
     "polygon", "Solar Power Plant with 19.9 MW electric power output"),
    ({"building": "yes"}, "polygon", "Building"),
    ({"highway": "platform"}, "line", "road of platform"),  # "Highway Feature" would hide it
    ({"barrier": "fence"}, "polygon", "barrier of fence"),  # fences are lines only
    ({"landuse": "quarry", "resource": "bauxite"}, "polygon", "Quarry with bauxite resources"),
    ({"highway": "track", "bridge": "yes"}, "line",  # bridge's field is labelled just "Type"
     "Track / Land-Access Road with bridge of yes"),
]


@pytest.mark.parametrize("tags, kind, natural", PRESET_EXAMPLES,
                         ids=[e[2] for e in PRESET_EXAMPLES])
def test_natural_titles_use_id_presets(tags, kind, natural):
    assert skyscript_db.caption(tags, kind=kind).title_natural == natural


def test_natural_multi_object_caption_counts_names_and_fits_the_cap():
    around = [{"natural": "scrub"}] * 5 + [{"leisure": "park"}] * 2 + [{"amenity": "parking"}]
    tennis = {"leisure": "pitch", "sport": "tennis", "surface": "clay"}
    got = skyscript_db.caption(tennis, around)
    assert got.title_natural == "Tennis Court with clay surface"
    assert got.title_multi_objects_natural == (
        "Tennis Court with clay surface, surrounded by Scrub ×5; Park ×2; Parking")
    assert got.title_multi_objects.count("natural scrub") == 5  # the paper's column unchanged
    short = skyscript_db.caption(tennis, around, max_chars=63).title_multi_objects_natural
    assert short == "Tennis Court with clay surface, surrounded by Scrub ×5; Park ×2"


def test_natural_captions_in_german_and_without_connecting_words():
    tennis = {"leisure": "pitch", "sport": "tennis", "surface": "clay"}
    around = [{"leisure": "park"}, {"building": "yes"}]
    assert skyscript_db.caption(tennis, around, language="de")[2:] == (
        "Tennisplatz mit Oberfläche: Ton",
        "Tennisplatz mit Oberfläche: Ton, umgeben von Park; Gebäude")
    # de-AT has no strings of its own: German's; Finnish has no connecting words: punctuation
    assert skyscript_db.caption(tennis, language="de-AT").title_natural == \
        "Tennisplatz mit Oberfläche: Ton"
    assert skyscript_db.caption(tennis, around, language="fi").title_multi_objects_natural == (
        "Tenniskenttä (Päällyste: Savi) — Puisto; Rakennus")


def test_tags_with_no_preset_keep_the_papers_phrase():
    assert skyscript_db.caption({"foo": "bar", "surface": "paved"}, kind="point")[2:] == (
        "foo of bar with paved surface", "foo of bar with paved surface")


def test_unknown_caption_language_is_refused():
    with pytest.raises(Exception, match="caption_language xx is not in the iD tagging schema"):
        skyscript_db.caption({"amenity": "parking"}, language="xx")


def test_empty_center_is_refused():
    with pytest.raises(InputError, match="not described"):
        skyscript_db.caption({})


def test_stage_captions_on_helsinki(helsinki_built):
    with skyscript_db.connect(helsinki_built, read_only=True) as con:
        n_requests = con.execute("select count(*) from image_requests").fetchone()[0]
        rows = con.execute("select title, title_multi_objects from captions").fetchall()
        invisible = con.execute(
            "select count(*) from captions, unnest([title, title_natural, "
            "title_multi_objects, title_multi_objects_natural]) as t(c) "
            "where c like '%name of%' or c like '%addr%' or c like '%wikidata%'").fetchone()[0]
        natural = con.execute(
            "select count(*) filter (where title_natural <> title), "
            "count(*) filter (where length(title_multi_objects_natural) > 300) "
            "from captions").fetchone()
    assert n_requests > 100 and len(rows) == n_requests
    for title, multi in rows:
        first = title.split(", ")[0]
        assert multi.startswith(first)
    assert invisible == 0
    assert any(", surrounded by " in multi for _, multi in rows)
    assert natural[0] > len(rows) / 2 and natural[1] == 0


def test_natural_multi_object_caption_of_the_town(town_built):
    """The inline town: driveways named by their preset, neighbours by theirs, counted."""
    with skyscript_db.connect(town_built, read_only=True) as con:
        rows = con.execute("select title, title_multi_objects_natural from captions").fetchall()
    driveways = [natural for title, natural in rows
                 if title == "road of service, service of driveway"]
    assert driveways and all(n.startswith("Driveway, surrounded by ") for n in driveways)
    said = "; ".join(natural for _, natural in rows)
    assert "Katu" not in said and "Puisto" not in said  # names are not visible
    assert "Residential Building" in said and "Tree" in said and "Driveway ×2" in said


def test_surrounding_objects_capped(helsinki_db, tmp_path):
    """max_surrounding=2: no multi-object caption names more than two surrounding objects."""
    db = tmp_path / "cap.duckdb"
    shutil.copy(helsinki_db, db)
    skyscript_db.build(HELSINKI, db, skyscript_db.BuildConfig(max_surrounding=2, imagery="catalog"))
    with skyscript_db.connect(db, read_only=True) as con:
        most = con.execute(
            "select max(len(string_split(split_part(title_multi_objects, ', surrounded by ', 2), '; ')))"
            " from captions where title_multi_objects like '%surrounded by%'").fetchone()[0]
    assert most == 2


def test_an_object_at_two_gsds_is_said_with_the_tags_each_shows(helsinki_built, tmp_path):
    """An object's words are made once per GSD: the same centre requested again at a coarser
    GSD loses the tags not visible there, and the first request keeps them."""
    db = tmp_path / "gsd.duckdb"
    shutil.copy(helsinki_built, db)
    with skyscript_db.connect(db) as con:
        # a centre whose visible tags reach different GSDs; coarse: the largest of them
        pair, coarse = con.execute("""
            select r.pair_id, max(v.max_gsd_m)
            from image_requests as r
            join osm_tags as t using (osm_type, osm_id)
            join tag_visibility as v using (key, value)
            where v.visible and v.max_gsd_m >= r.gsd_m
            group by r.pair_id
            having count(distinct v.max_gsd_m) > 1
            order by r.pair_id
            limit 1""").fetchone()
        coarse_pair = con.execute("select max(pair_id) + 1 from image_requests").fetchone()[0]
        con.execute("insert into image_requests select * replace (? as pair_id, ? as gsd_m) "
                    "from image_requests where pair_id = ?", [coarse_pair, coarse, pair])
        before = con.execute("select title from captions where pair_id = ?", [pair]).fetchone()
        kind, keys, values = con.execute("""
            with tags as (
                select
                    o.kind,
                    unnest(map_keys(o.tags)) as key,
                    unnest(map_values(o.tags)) as value,
                    generate_subscripts(map_keys(o.tags), 1) as pos
                from image_requests as r
                join osm_objects as o using (osm_type, osm_id)
                where r.pair_id = ?
            )
            select any_value(kind), list(key order by pos), list(value order by pos)
            from tags
            join tag_visibility as v using (key, value)
            where v.visible and v.max_gsd_m >= ?""", [pair, coarse]).fetchone()
    run_stage(db, "captions")
    with skyscript_db.connect(db, read_only=True) as con:
        titles = dict(con.execute("select pair_id, title from captions where pair_id in (?, ?)",
                                  [pair, coarse_pair]).fetchall())
    assert titles[pair] == before[0]
    assert titles[coarse_pair] == skyscript_db.caption(dict(zip(keys, values)), kind=kind).title
    assert titles[coarse_pair] != titles[pair]
