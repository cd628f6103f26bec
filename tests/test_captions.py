"""Captions: the paper's examples exactly, and the stage's output on real data."""

from __future__ import annotations

import shutil

import pytest

import skyscript_db
from skyscript_db.errors import InputError

from conftest import HELSINKI

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
    assert skyscript_db.caption(center, around) == (title, multi)


def test_key_styles_and_primary_key_first():
    # smoothness joins with "is", lanes with "of"; highway (renamed road) is the primary key.
    assert skyscript_db.caption({"lanes": "2", "smoothness": "good", "highway": "residential"}) == (
        "road of residential, lanes of 2, smoothness is good",
        "road of residential with lanes of 2 and smoothness is good",
    )


def test_empty_center_is_refused():
    with pytest.raises(InputError, match="not described"):
        skyscript_db.caption({})


def test_stage_captions_on_helsinki(helsinki_built):
    with skyscript_db.connect(helsinki_built, read_only=True) as con:
        n_requests = con.execute("select count(*) from image_requests").fetchone()[0]
        rows = con.execute("select title, title_multi_objects from captions").fetchall()
        invisible = con.execute(
            "select count(*) from captions where title like '%name of%' "
            "or title like '%addr%' or title like '%wikidata%'").fetchone()[0]
    assert n_requests > 100 and len(rows) == n_requests
    for title, multi in rows:
        first = title.split(", ")[0]
        assert multi.startswith(first)
    assert invisible == 0
    assert any(", surrounded by " in multi for _, multi in rows)


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

