"""The SQL stages on real data: grid ids, seeded draws, selection, imagery choice, bound rules."""

from __future__ import annotations

import math
import shutil

import duckdb
import pytest

import skyscript_db
from skyscript_db import queries
from skyscript_db.queries import create_macros

from conftest import CATALOG, HELSINKI, IMAGERY

DIGESTS = {
    "tag_visibility": "select count(*), sum(hash(key, value, visible, max_gsd_m, round(p_visible, 5), "
                      "source)) from tag_visibility",
    "grid_draw": "select count(*), sum(hash(cell_id, draw_rank)) from grid_draw",
    "selected_objects": "select count(*), sum(hash(osm_type, osm_id, reason, detail)) "
                        "from selected_objects",
    "image_requests": "select count(*), sum(hash(pair_id, collection_code, west, south, east, "
                      "north, width_px, height_px)) from image_requests",
    "captions": "select count(*), sum(hash(pair_id, title, title_multi_objects)) from captions",
}


def digests(db) -> dict:
    with skyscript_db.connect(db, read_only=True) as con:
        return {name: con.execute(q).fetchone() for name, q in DIGESTS.items()}


def python_cell_id(lon: float, lat: float) -> int:
    """The grid rule written independently: floor(lon/0.01), floor(lat/0.01), 180° = -180°."""
    x = math.floor(lon / 0.01)
    if x >= 18000:
        x -= 36000
    y = min(max(math.floor(lat / 0.01), -9000), 8999)
    return (y + 9000) * 36000 + (x + 18000)


@pytest.mark.parametrize("lon, lat", [
    (24.9384, 60.1699), (-0.0001, -0.0001), (0.0, 0.0), (-122.4194, 37.7749),
    (151.2093, -33.8688), (-180.0, -90.0), (180.0, 90.0), (179.99999, 12.3), (-179.995, -45.005),
    (-34.87, -8.05), (0.015, -0.015),
])
def test_cell_ids_agree_with_independent_computation(lon, lat):
    con = duckdb.connect()
    create_macros(con)
    ours = con.execute("select cell_id(cell_x($lon), cell_y($lat))", {"lon": lon, "lat": lat}
                       ).fetchone()[0]
    assert ours == python_cell_id(lon, lat)


def test_object_cells_of_points_agree_with_python(eleven_built):
    with skyscript_db.connect(eleven_built, read_only=True) as con:
        rows = con.execute(
            "select st_x(o.geom), st_y(o.geom), c.cell_id from osm_objects o "
            "join object_cells c using (osm_type, osm_id) where o.kind = 'point' "
            "order by hash(o.osm_id) limit 2000").fetchall()
        negative = con.execute("select count(*) from object_cells where cell_id < 9000 * 36000"
                               ).fetchone()[0]
    assert len(rows) == 2000
    assert all(cell == python_cell_id(x, y) for x, y, cell in rows)
    assert negative > 0  # Sydney lies south of the equator


def test_lines_and_polygons_get_the_cells_of_their_vertices(eleven_built):
    with skyscript_db.connect(eleven_built, read_only=True) as con:
        create_macros(con)
        missing = con.execute(
            """
            with sample as (
                select osm_type, osm_id, geom from osm_objects where kind <> 'point'
                order by hash(osm_id) limit 300
            ),
            vertices as (
                select osm_type, osm_id, unnest(st_dump(st_points(geom))).geom as p from sample
            )
            select count(*) from vertices v
            anti join object_cells c on c.osm_type = v.osm_type and c.osm_id = v.osm_id
                and c.cell_id = cell_id(cell_x(st_x(v.p)), cell_y(st_y(v.p)))
            """).fetchone()[0]
    assert missing == 0


def test_tag_stats_are_consistent(eleven_built):
    with skyscript_db.connect(eleven_built, read_only=True) as con:
        bad_sum = con.execute("select count(*) from tag_stats where n_objects <> n_points + n_lines "
                              "+ n_polygons or n_cells < 1").fetchone()[0]
        total, tags = con.execute("select (select sum(n_objects) from tag_stats), "
                                  "(select count(*) from osm_tags)").fetchone()
        water = con.execute("select n_objects from tag_stats where key = 'natural' and value = 'water'"
                            ).fetchone()[0]
        water_direct = con.execute("select count(*) from osm_objects where tags['natural'] = 'water'"
                                   ).fetchone()[0]
    assert bad_sum == 0 and total == tags and water == water_direct > 0


def test_tag_stats_say_where_objects_stand(eleven_built):
    """Shops stand inside buildings, barriers do not; surfaces are roads'; a building's own key
    never counts as 'also a building'; and the count of one tag agrees with a direct check."""
    with skyscript_db.connect(eleven_built, read_only=True) as con:
        share = dict(con.execute(
            "select key, list_transform([sum(n_in_building), sum(n_with_building), "
            "sum(n_with_highway)], n -> n / sum(n_objects)) from tag_stats group by key"
        ).fetchall())
        bad = con.execute("select count(*) from tag_stats where greatest(n_in_building, "
                          "n_with_building, n_with_highway) > n_objects").fetchone()[0]
        counted, direct = con.execute("""
            with bakeries as (
                select osm_type, osm_id, geom from osm_objects where tags['shop'] = 'bakery'
            )
            select
                (select n_in_building from tag_stats where key = 'shop' and value = 'bakery'),
                count(*) filter (where exists (
                    select 1 from osm_objects as b
                    where b.kind = 'polygon' and coalesce(b.tags['building'], 'no') <> 'no'
                        and (b.osm_type, b.osm_id) <> (k.osm_type, k.osm_id)
                        and st_contains(b.geom, if(st_geometrytype(k.geom) = 'POINT', k.geom,
                                                   st_pointonsurface(k.geom)))))
            from bakeries as k""").fetchone()
    assert bad == 0 and counted == direct > 10
    assert share["shop"][0] > 0.5 > 0.1 > share["barrier"][0]
    assert share["surface"][2] > 0.9 and share["building"][1] == 0


def test_same_seed_same_rows_other_seed_other_draw(helsinki_db, tmp_path):
    dbs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        dbs[name] = tmp_path / f"{name}.duckdb"
        shutil.copy(helsinki_db, dbs[name])
        skyscript_db.build(HELSINKI, dbs[name], skyscript_db.BuildConfig(seed=seed, fraction=0.5,
                                                                      imagery="catalog"))
    a, b, c = (digests(dbs[n]) for n in "abc")
    assert a == b
    assert a["grid_draw"] != c["grid_draw"] and a["image_requests"] != c["image_requests"]


def test_rare_tags_fill_in_and_respect_cap(eleven_built):
    config = skyscript_db.BuildConfig()
    with skyscript_db.connect(eleven_built, read_only=True) as con:
        dupes = con.execute("select count(*) - count(distinct (osm_type, osm_id)) "
                            "from selected_objects").fetchone()[0]
        over_cap = con.execute("select count(*) from (select detail from selected_objects "
                               "where reason = 'rare_tag' group by detail having count(*) > $c)",
                               {"c": config.rare_cap}).fetchone()[0]
        not_rare = con.execute(
            """
            with grid_counts as (
                select t.key || '=' || t.value as tag, count(*) as n
                from osm_tags t
                semi join (select * from selected_objects where reason = 'grid') s
                    using (osm_type, osm_id)
                group by 1
            )
            select count(*) from selected_objects s
            left join grid_counts g on g.tag = s.detail
            join tag_visibility v on v.key || '=' || v.value = s.detail
            where s.reason = 'rare_tag' and (coalesce(g.n, 0) >= $t or not v.visible)
            """, {"t": config.rare_threshold}).fetchone()[0]
        n_rare = con.execute("select count(*) from selected_objects where reason = 'rare_tag'"
                             ).fetchone()[0]
    assert dupes == 0 and over_cap == 0 and not_rare == 0 and n_rare > 100


def test_image_requests_follow_the_bound_rules(eleven_built):
    with skyscript_db.connect(eleven_built, read_only=True) as con:
        create_macros(con)
        checks = dict(con.execute(queries.parse(RULES_SQL, "test")["rules"].text).fetchall())
        kinds = dict(con.execute("select kind, count(*) from image_requests group by 1").fetchall())
        codes = {c for (c,) in con.execute("select distinct collection_code from image_requests")
                 .fetchall()}
    assert set(kinds) == {"point", "line", "polygon"} and min(kinds.values()) > 50
    assert {"FI", "S2"} <= codes and len(codes) >= 4
    assert {name: n for name, n in checks.items() if n} == {}


RULES_SQL = """
-- name: rules
with
r as (
    select r.*, o.geom, c.gsd_m as collection_gsd, c.footprint,
        st_transform(o.geom, 'EPSG:4326', 'EPSG:' || r.utm_epsg, always_xy := true) as geom_m,
        (x_max - x_min) / 3 as third_w, (y_max - y_min) / 3 as third_h
    from image_requests r
    join osm_objects o using (osm_type, osm_id)
    join image_collections c on c.code = r.collection_code
),
max_visible as (
    select t.osm_type, t.osm_id, max(v.max_gsd_m) as g
    from osm_tags t join tag_visibility v using (key, value) where v.visible group by all
)
select 'point/line size outside 168-300 px', count(*) from r
    where kind <> 'polygon' and not (width_px between 168 and 300 and height_px between 168 and 300)
union all
select 'point/line object not in the middle third', count(*) from r
    where kind <> 'polygon' and not st_intersects(geom_m, st_makeenvelope(
        x_min + third_w, y_min + third_h, x_max - third_w, y_max - third_h))
union all
select 'polygon size outside 150-1500 px', count(*) from r
    where kind = 'polygon' and not (width_px between 150 and 1500 and height_px between 150 and 1500)
union all
select 'polygon aspect outside 0.5-2', count(*) from r
    where kind = 'polygon' and not (width_px / height_px between 0.5 and 2)
union all
select 'polygon bounding box not inside the image', count(*) from r
    where kind = 'polygon' and not (st_xmin(geom_m) >= x_min - 1e-6 and st_xmax(geom_m) <= x_max + 1e-6
        and st_ymin(geom_m) >= y_min - 1e-6 and st_ymax(geom_m) <= y_max + 1e-6)
union all
select 'polygon box not 75-1000 px at the GSD', count(*) from r
    where kind = 'polygon' and not ((st_xmax(geom_m) - st_xmin(geom_m)) / gsd_m between 75 and 1000
        and (st_ymax(geom_m) - st_ymin(geom_m)) / gsd_m between 75 and 1000)
union all
select 'pixel size differs from the collection GSD', count(*) from r
    where gsd_m <> collection_gsd
        or abs((x_max - x_min) / width_px - gsd_m) > 1e-6 * gsd_m
        or abs((y_max - y_min) / height_px - gsd_m) > 1e-6 * gsd_m
union all
select 'GSD coarser than every visible tag allows', count(*) from r join max_visible m using (osm_type, osm_id)
    where r.gsd_m > m.g
union all
select 'collection footprint misses the object', count(*) from r
    where not st_intersects(footprint, geom)
union all
select 'lon/lat box misses its centre', count(*) from r
    where not (center_lon between west and east and center_lat between south and north)
"""


def test_local_rasters_become_collections(helsinki_db, tmp_path):
    db = tmp_path / "local.duckdb"
    shutil.copy(helsinki_db, db)
    rasters = sorted(IMAGERY.glob("*.tif"))
    with skyscript_db.connect(db) as con:
        from skyscript_db.etl.register import add_imagery

        add_imagery(con, rasters)
    ran = skyscript_db.build(HELSINKI, db, CATALOG)
    assert "image_collections" in ran
    with skyscript_db.connect(db, read_only=True) as con:
        naip = con.execute("select gsd_m, kind, st_covers(footprint, st_makeenvelope("
                           "-99.1850, 47.0045, -99.1245, 47.0363)), st_area(footprint) from "
                           "image_collections where code = 'LOCAL_NAIP_NORTH_DAKOTA_2020_5M'"
                           ).fetchone()
        n_local = con.execute("select count(*) from image_collections where kind = 'local'"
                              ).fetchone()[0]
    assert n_local == len(rasters) == 4
    gsd, kind, covers, area = naip
    assert (gsd, kind, covers) == (5.0, "local", True)
    assert area == pytest.approx((99.1856 - 99.1241) * (47.0367 - 47.0041), rel=0.05)


def test_stage_rerun_alone_and_failed_stage_rolls_back(helsinki_built, tmp_path, monkeypatch):
    db = tmp_path / "rerun.duckdb"
    shutil.copy(helsinki_built, db)
    before = digests(db)
    assert skyscript_db.build(HELSINKI, db, CATALOG, only="grid") == ["grid"]
    assert digests(db)["grid_draw"] == before["grid_draw"]
    # The rerun drew the same cells (same seed): nothing below it is stale.
    assert skyscript_db.build(HELSINKI, db, CATALOG) == []
    other = skyscript_db.BuildConfig(imagery="catalog", fraction=0.3)
    assert skyscript_db.build(HELSINKI, db, other) == ["grid", "rare_tags", "image_collections",
                                                       "benchmark", "image_requests", "captions"]
    assert skyscript_db.build(HELSINKI, db, CATALOG, from_stage="grid")[0] == "grid"
    assert digests(db) == before

    broken = dict(queries.load("60_image_requests.sql"))
    broken["summary"] = queries.parse("-- name: summary\nselect no_such_column", "broken.sql")["summary"]
    original = queries.load
    monkeypatch.setattr(queries, "load", lambda f: broken if f == "60_image_requests.sql" else original(f))
    with pytest.raises(duckdb.BinderException):
        skyscript_db.build(HELSINKI, db, CATALOG, only="image_requests")
    assert digests(db) == before
    # captions stages its spatial join before its transaction: still nothing kept on failure
    broken_captions = dict(original("70_captions.sql"), summary=broken["summary"])
    monkeypatch.setattr(queries, "load",
                        lambda f: broken_captions if f == "70_captions.sql" else original(f))
    with pytest.raises(duckdb.BinderException):
        skyscript_db.build(HELSINKI, db, CATALOG, only="captions")
    assert digests(db) == before


def test_collection_choice_narrows_and_orders_the_candidates(helsinki_built, tmp_path):
    """--collections, --exclude-collections and --prefer finest change which collection each
    object's request draws, never the rules; an unknown code is an error that changes
    nothing."""
    from skyscript_db.config import BuildConfig, Options

    from conftest import copy_db, run_stage

    db = copy_db(helsinki_built, tmp_path)

    def requests(**choice) -> dict[int, tuple[str, float]]:
        info = run_stage(db, "image_requests", Options(build=BuildConfig(**choice))).info
        counted = sum(info[k] for k in ("rows_out", "no_visible_tag", "no_collection_covers_it",
                                        "only_excluded_collections", "collections_too_coarse",
                                        "polygon_too_small_or_large"))
        assert counted == info["rows_in"]  # every selected object is accounted for, once
        with skyscript_db.connect(db, read_only=True) as con:
            return {p: (c, g) for p, c, g in con.execute(
                "select pair_id, collection_code, gsd_m from image_requests").fetchall()}

    drawn = requests()
    codes = {code for code, _ in drawn.values()}
    assert len(codes) >= 3
    finest = requests(prefer="finest")
    assert finest.keys() == drawn.keys()
    assert all(finest[p][1] <= drawn[p][1] for p in drawn)
    assert sum(finest[p][1] < drawn[p][1] for p in drawn) > len(drawn) / 10
    common = max(codes, key=lambda c: sum(code == c for code, _ in drawn.values()))
    only = requests(collections=(common,))
    assert {code for code, _ in only.values()} == {common} and len(only) <= len(drawn)
    without = requests(exclude_collections=(common,))
    assert common not in {code for code, _ in without.values()}
    before = requests()
    with pytest.raises(duckdb.Error, match="no collection NOPE"):
        run_stage(db, "image_requests", Options(build=BuildConfig(collections=("NOPE",))))
    with skyscript_db.connect(db, read_only=True) as con:
        assert dict(con.execute("select pair_id, collection_code from image_requests")
                    .fetchall()) == {p: c for p, (c, _) in before.items()}
