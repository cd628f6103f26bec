"""Each SQL stage on the inline town, checked against what the test itself wrote (no
../shared): ingest, tag statistics, tag visibility, grid, rare tags, imagery, requests, captions,
fetched images and embeddings."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import skyscript_db
from skyscript_db.db import Paths

from conftest import TOWN_CONFIG

BLOCKS = 6  # tests/osm_inline.py::town's default


def rows(db: Path, query: str, **params) -> list[tuple]:
    with skyscript_db.connect(db, read_only=True) as con:
        return con.execute(query, params or None).fetchall()


def one(db: Path, query: str, **params):
    return rows(db, query, **params)[0][0]


def test_ingest_keeps_every_tagged_object_of_its_kind(town_built):
    kinds = dict(rows(town_built, "select kind, count(*) from osm_objects group by kind"))
    # blocks (closed ways) and the multipolygon are polygons; a tree or bench per block and the
    # water tower are points; two streets per grid line are lines.
    assert kinds == {"polygon": BLOCKS * BLOCKS + 1, "point": BLOCKS * BLOCKS + 1,
                     "line": 2 * (BLOCKS + 1)}
    (kind, holes), = rows(town_built, "select kind, st_ninteriorrings(st_dump(geom)[1].geom) "
                                      "from osm_objects where osm_type = 'relation'")
    assert (kind, holes) == ("polygon", 1)  # the courtyard stays a hole


def test_tag_stats_count_objects_per_tag(town_built):
    tennis, cells = rows(town_built, "select n_objects, n_cells from tag_stats "
                                     "where key = 'sport' and value = 'tennis'")[0]
    assert tennis == sum(1 for i in range(BLOCKS * BLOCKS) if i % 6 == 3)
    assert 1 <= cells <= tennis
    direct = one(town_built, "select count(*) from osm_tags")
    assert one(town_built, "select sum(n_objects) from tag_stats") == direct


def test_names_and_addresses_are_invisible_buildings_visible(town_built):
    verdicts = dict(rows(town_built, "select key || '=' || value, visible from tag_visibility "
                                     "where key in ('name', 'addr:housenumber', 'building', "
                                     "'highway')"))
    assert not any(v for k, v in verdicts.items() if k.startswith(("name=", "addr:")))
    assert verdicts["building=yes"] and verdicts["highway=residential"]


def test_grid_with_fraction_one_selects_every_occupied_cell(town_built):
    occupied = one(town_built, "select count(distinct cell_id) from object_cells")
    assert one(town_built, "select count(*) from grid_draw") == occupied
    assert TOWN_CONFIG.fraction == 1.0
    assert one(town_built, "select count(*) from selected_objects where reason = 'grid'") == \
        one(town_built, "select count(*) from osm_objects")


def test_every_request_fits_its_collection_and_object(town_built):
    bad = one(town_built, """
        select count(*) from image_requests r
        join image_collections c on c.code = r.collection_code
        join osm_objects o using (osm_type, osm_id)
        where r.gsd_m <> c.gsd_m or c.kind <> 'render'
           or not st_intersects(st_makeenvelope(r.west, r.south, r.east, r.north), o.geom)
           or r.width_px not between 75 and 1500 or r.height_px not between 75 and 1500""")
    assert bad == 0 and one(town_built, "select count(*) from image_requests") > 50


def test_captions_name_visible_tags_only(town_built):
    titles = [t for (t,) in rows(town_built, "select title from captions")]
    assert titles and not any("Katu" in t or "Puisto" in t for t in titles)  # names are invisible
    assert any("pitch" in t for t in titles) and any("building" in t for t in titles)
    surrounded = one(town_built, "select count(*) from captions "
                                 "where title_multi_objects like '%surrounded by%'")
    assert surrounded > 0


def test_every_request_has_an_image_file_of_its_size_and_an_embedding(town_built):
    from PIL import Image

    root = Paths.of(town_built).root
    for path, width, height in rows(town_built, "select i.path, r.width_px, r.height_px "
                                                "from images i join image_requests r "
                                                "using (pair_id) where i.status = 'ok'"):
        with Image.open(root / path) as image:
            assert image.size == (width, height)
    n = one(town_built, "select count(*) from image_requests")
    assert one(town_built, "select count(*) from images where status = 'ok'") == n
    assert one(town_built, "select count(*) from pairs") == n


@pytest.mark.parametrize("lon, lat", [(24.9301, 60.1601), (24.9539, 60.1839)])
def test_object_cells_follow_the_grid_rule(town_built, lon, lat):
    cell = (math.floor(lat / 0.01) + 9000) * 36000 + math.floor(lon / 0.01) + 18000
    assert one(town_built, "select count(*) from object_cells where cell_id = $c", c=cell) > 0
