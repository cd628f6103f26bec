"""Any region of any extract: a clip, tag filters, several files, an extract by URL. Each kept set
is checked against a full ingest filtered here, by code that shares nothing with the stage."""

from __future__ import annotations

import fnmatch
import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import skyscript_db
from skyscript_db.cli import app
from skyscript_db.config import IngestConfig, Options
from skyscript_db.db import cache_folder
from skyscript_db.errors import ConfigError, InputError
from skyscript_db.etl import download, pipeline

from conftest import HELSINKI, shared_extract
from http_server import RangeServer
from osm_inline import ring, square, town, write_pbf

# The middle of the central-Helsinki extract (24.935-24.953 E, 60.164-60.179 N).
MIDDLE = (24.940, 60.168, 24.948, 60.175)
TRIANGLE = {"type": "Feature", "properties": {}, "geometry": {
    "type": "Polygon", "coordinates": [[[24.938, 60.166], [24.950, 60.168], [24.942, 60.177],
                                        [24.938, 60.166]]]}}


def ingest(pbf, db: Path, **config) -> Path:
    skyscript_db.build(pbf, db, only="ingest", ingest=IngestConfig(**config))
    return db


def rows(db: Path, query: str, **params) -> list[tuple]:
    with skyscript_db.connect(db, read_only=True) as con:
        return con.execute(query, params or None).fetchall()


def ids(db: Path, where: str = "true", **params) -> set[tuple[str, int]]:
    return set(rows(db, f"select osm_type, osm_id from osm_objects where {where}", **params))


def up_to_date(db: Path, files: list) -> bool:
    """Whether ingest, asked again with the same files, has nothing to do."""
    return pipeline.run(db, Options(pbf=tuple(map(str, files))), ["ingest"]) == {}


@pytest.fixture(scope="module")
def full(helsinki_db) -> Path:
    return helsinki_db


@pytest.mark.parametrize("clip, area", [
    (",".join(map(str, MIDDLE)), "st_makeenvelope({}, {}, {}, {})".format(*MIDDLE)),
    ("triangle.geojson", "st_geomfromgeojson($triangle)"),
], ids=["bbox", "geojson-file"])
def test_clip_keeps_exactly_the_objects_intersecting_it(full, tmp_path, clip, area):
    if clip.endswith(".geojson"):
        (tmp_path / clip).write_text(json.dumps(TRIANGLE))
        clip = str(tmp_path / clip)
    params = {"triangle": json.dumps(TRIANGLE["geometry"])} if "$triangle" in area else {}
    clipped = ingest(shared_extract(HELSINKI), tmp_path / "clipped.duckdb", clip=clip)
    expected = ids(full, f"st_intersects(geom, {area})", **params)
    assert ids(clipped) == expected
    assert 0 < len(expected) < len(ids(full)) / 1.5
    assert rows(clipped, f"select count(*) from osm_objects where not st_intersects(geom, {area})",
                **params) == [(0,)]
    assert "clip" in dict(rows(clipped, "select key, value from build_info"))


def test_a_way_crossing_the_clip_keeps_its_whole_geometry(full, tmp_path):
    clipped = ingest(shared_extract(HELSINKI), tmp_path / "clipped.duckdb",
                     clip=",".join(map(str, MIDDLE)))
    box = "st_makeenvelope({}, {}, {}, {})".format(*MIDDLE)
    crossing = rows(full, f"""select osm_type, osm_id, st_npoints(geom), st_astext(geom)
                              from osm_objects where kind <> 'point'
                              and st_intersects(geom, {box}) and not st_within(geom, {box})""")
    assert len(crossing) > 20
    # multipolygons too: with a clip they are assembled from a small file of their own
    assert sum(osm_type == "relation" for osm_type, *_ in crossing) >= 3
    kept = {(t, i): (n, wkt) for t, i, n, wkt in rows(
        clipped, "select osm_type, osm_id, st_npoints(geom), st_astext(geom) from osm_objects")}
    for osm_type, osm_id, n_points, wkt in crossing:
        assert kept[(osm_type, osm_id)] == (n_points, wkt)


def test_a_multipolygon_around_the_clip_is_kept_whole(tmp_path):
    """A clip in the middle of a lake whose shore is four straight member ways: no member
    way's bounding box meets the clip, the relation's does, so the lake is kept, whole."""
    corners = square(1, 24.93, 60.16, size=0.01)
    sides = [(10 + i, [1 + i, 1 + (i + 1) % 4], {}) for i in range(4)]
    lake = (20, [("w", 10 + i, "outer") for i in range(4)],
            {"type": "multipolygon", "natural": "water"})
    pbf = write_pbf(tmp_path / "lake.osm.pbf", corners, sides, [lake])
    full = ingest(pbf, tmp_path / "full.duckdb")
    clipped = ingest(pbf, tmp_path / "clipped.duckdb", clip="24.934,60.164,24.936,60.166")
    query = "select osm_type, osm_id, st_astext(geom) from osm_objects"
    assert rows(clipped, query) == rows(full, query) == [
        ("relation", 20, "POLYGON ((24.93 60.16, 24.94 60.16, 24.94 60.17, 24.93 60.17, "
                         "24.93 60.16))")]


def matches(tags: dict[str, str], tags_filter: dict) -> bool:
    """QuackOSM's rule, written again with fnmatch: one positive hit (if any positive entry
    exists) and no negative one."""
    def hit(key_glob: str, values) -> bool:
        globs = None if isinstance(values, bool) else [values] if isinstance(values, str) \
            else values
        return any(fnmatch.fnmatchcase(k, key_glob)
                   and (globs is None or any(fnmatch.fnmatchcase(v, g) for g in globs))
                   for k, v in tags.items())
    positive = {k: v for k, v in tags_filter.items() if v is not False}
    negative = [k for k, v in tags_filter.items() if v is False]
    return (not positive or any(hit(k, v) for k, v in positive.items())) \
        and not any(hit(k, True) for k in negative)


@pytest.mark.parametrize("tags_filter", [
    {"building": True, "amenity": ["parking", "school"]},
    {"addr:*": True, "shop": "*er*"},
    {"highway": True, "surface": False, "sidewalk:*": False},
], ids=["positive", "wildcard", "negated"])
def test_tag_filter_keeps_what_the_rule_says(full, tmp_path, tags_filter):
    filtered = ingest(shared_extract(HELSINKI), tmp_path / "filtered.duckdb",
                      tags_filter=json.dumps(tags_filter))
    expected = {(t, i) for t, i, tags in rows(full, "select osm_type, osm_id, tags from osm_objects")
                if matches(tags, tags_filter)}
    assert ids(filtered) == expected and 0 < len(expected) < len(ids(full))
    rejects = {(t, i) for t, i, tags in rows(full, "select osm_type, osm_id, tags from osm_rejects")
               if matches(tags, tags_filter)}
    assert set(rows(filtered, "select osm_type, osm_id from osm_rejects")) == rejects
    stage = rows(filtered, "select info->>'tag_filtered' from stage_runs where stage = 'ingest'")
    tagged = rows(full, "select (select count(*) from osm_objects) + (select count(*) from "
                        "osm_rejects)")[0][0]
    assert int(stage[0][0]) == tagged - len(expected) - len(rejects)


@pytest.mark.parametrize("bad, message", [
    ({"clip": "1,2,3,x"}, "four numbers W,S,E,N"),
    ({"clip": "POINT (24.94 60.17)"}, "not an area"),
    ({"clip": "LINESTRING (0 0"}, "not WKT, GeoJSON"),
    ({"tags_filter": '{"building": 3}'}, "'building': 3 is not true, false"),
    ({"tags_filter": '{"building": true'}, "not valid JSON"),
    ({"tags_filter": '["building"]'}, "give a JSON object"),
])
def test_bad_clip_or_filter_is_a_clear_error_and_changes_nothing(full, tmp_path, bad, message):
    db = tmp_path / "kept.duckdb"
    db.write_bytes(full.read_bytes())
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    with pytest.raises(ConfigError, match=message):
        ingest(shared_extract(HELSINKI), db, **bad)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    with pytest.raises(ConfigError, match=message):
        ingest(shared_extract(HELSINKI), tmp_path / "new.duckdb", **bad)
    assert not (tmp_path / "new.duckdb").exists()


# ---- several files --------------------------------------------------------------------------

def two_extracts(folder: Path) -> tuple[Path, Path]:
    """West and east halves of a strip of shops, overlapping in the middle: a shop and a building
    in both, the shop edited (version 2) in the east one."""
    points = {1: (24.9300, 60.1600), 2: (24.9310, 60.1600), 3: (24.9320, 60.1600)}
    building = [(10, ring(100), {"building": "yes"})]
    west = write_pbf(folder / "west.osm.pbf", {1: points[1], 2: points[2]} | square(100, 24.9305, 60.1605),
                     building, node_tags={1: {"amenity": "bench"}, 2: {"shop": "bakery"}})
    east = write_pbf(folder / "east.osm.pbf", {2: points[2], 3: points[3]} | square(100, 24.9305, 60.1605),
                     building, node_tags={2: {"shop": "bakery", "name": "Leipomo"},
                                          3: {"amenity": "bench"}}, versions={("n", 2): 2})
    return west, east


@pytest.mark.parametrize("order", ["west-east", "east-west"])
def test_several_files_give_the_union_with_the_newest_versions(tmp_path, order):
    west, east = two_extracts(tmp_path)
    files = [west, east] if order == "west-east" else [east, west]
    db = ingest(files, tmp_path / "both.duckdb")
    got = rows(db, "select osm_type, osm_id, tags from osm_objects order by all")
    assert [(t, i) for t, i, _ in got] == [("node", 1), ("node", 2), ("node", 3), ("way", 10)]
    assert dict(got[1][2]) == {"shop": "bakery", "name": "Leipomo"}  # version 2 wins
    assert rows(db, "select count(*) from osm_tags where osm_id = 2") == [(2,)]
    sources = json.loads(rows(db, "select value from build_info where key = 'sources'")[0][0])
    assert [s["name"] for s in sources] == [f.name for f in files]
    assert [s["sha256"] for s in sources] == [hashlib.sha256(f.read_bytes()).hexdigest()
                                               for f in files]
    assert up_to_date(db, files)


def test_cli_ingests_several_files_clipped_and_filtered(tmp_path):
    west, east = two_extracts(tmp_path)
    db = tmp_path / "cli.duckdb"
    box = "24.9295,60.1595,24.9315,60.1603"  # nodes 1 and 2; node 3 and the building are east
    result = CliRunner().invoke(app, ["ingest", str(west), str(east), "--db", str(db), "--bbox",
                                      box, "--tags-filter", '{"amenity": true, "shop": "*"}'])
    assert result.exit_code == 0, result.output
    assert ids(db) == {("node", 1), ("node", 2)}
    both = CliRunner().invoke(app, ["ingest", str(west), "--db", str(db), "--bbox", box,
                                    "--geometry", box])
    assert both.exit_code == 1 and "--bbox or --geometry, not both" in both.output


def test_the_same_extract_twice_is_the_extract_once(full, tmp_path):
    twice = ingest([shared_extract(HELSINKI)] * 2, tmp_path / "twice.duckdb")
    query = "select osm_type, osm_id, kind, tags, st_astext(geom) from osm_objects order by all"
    assert rows(twice, query) == rows(full, query)


# ---- by URL -----------------------------------------------------------------------------------

@pytest.fixture
def served_town(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A town extract in a folder a RangeServer serves, its .md5 beside it; the cache in
    tmp_path."""
    folder = tmp_path / "www"
    folder.mkdir()
    pbf = town(folder / "town.osm.pbf", blocks=3)
    (folder / "town.osm.pbf.md5").write_text(
        f"{hashlib.md5(pbf.read_bytes()).hexdigest()}  town.osm.pbf\n")
    monkeypatch.setenv("SKYSCRIPT_CACHE", str(tmp_path / "cache"))
    return folder, pbf


def test_an_extract_by_url_is_downloaded_once_and_cached(served_town, tmp_path):
    folder, pbf = served_town
    with RangeServer(folder) as server:
        url = f"{server.url}/ok/town.osm.pbf"
        db = ingest(url, tmp_path / "web.duckdb")
        cached = download.cached_path(url)
        assert cached.read_bytes() == pbf.read_bytes()
        assert ids(db) == ids(ingest(pbf, tmp_path / "local.duckdb"))
        arrived = server.arrived("town.osm.pbf")
        assert up_to_date(db, [url])  # from the cache
        assert server.arrived("town.osm.pbf") == arrived
    source = json.loads(rows(db, "select value from build_info where key = 'sources'")[0][0])
    assert source[0]["given"] == url and source[0]["file"] == str(cached.resolve())


def test_a_dropped_download_resumes_with_a_range_request(served_town, tmp_path):
    folder, pbf = served_town
    with RangeServer(folder) as server:
        url = f"{server.url}/dropfirst/town.osm.pbf"
        path = download.fetch(url)
        ranged = [hit for hit in server.log if hit.range and "town.osm.pbf" in hit.path]
    assert path.read_bytes() == pbf.read_bytes()
    assert len(ranged) == 1 and ranged[0].status == 206
    assert ranged[0].range == f"bytes={pbf.stat().st_size // 2}-"


def test_a_wrong_checksum_is_an_error_and_caches_nothing(served_town, tmp_path):
    folder, _ = served_town
    (folder / "town.osm.pbf.md5").write_text("0" * 32 + "  town.osm.pbf\n")
    with RangeServer(folder) as server:
        url = f"{server.url}/ok/town.osm.pbf"
        with pytest.raises(InputError, match="md5 .* does not match the published 0000"):
            ingest(url, tmp_path / "web.duckdb")
    assert not [p for p in cache_folder("extracts").rglob("*") if p.is_file()]
    assert not (tmp_path / "web.duckdb").exists()  # checked before the database is created
