"""Ingest on real extracts, checked against readers that share no code with ours."""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from pathlib import Path

import osmium
import pytest
from osmium.filter import EmptyTagFilter

import skyscript_db
from skyscript_db.errors import InputError

from conftest import ANDORRA, ELEVEN, HELSINKI, LIECHTENSTEIN, build_db, shared_extract

TABLE_DIGEST = {
    "osm_objects": "select count(*), sum(hash(osm_type, osm_id, kind, tags::varchar, st_aswkb(geom))) "
                   "from osm_objects",
    "osm_tags": "select count(*), sum(hash(osm_type, osm_id, key, value)) from osm_tags",
    "osm_rejects": "select count(*), sum(hash(osm_type, osm_id, reason)) from osm_rejects",
    "stage_runs": "select count(*) from stage_runs",
}


def digests(db: Path) -> dict[str, tuple]:
    with skyscript_db.connect(db, read_only=True) as con:
        return {name: con.execute(q).fetchone() for name, q in TABLE_DIGEST.items()}


def pyosmium_tagged_counts(pbf: Path) -> Counter:
    """Tagged elements by type, counted by pyosmium alone (no DuckDB, no code of ours)."""
    return Counter(o.type_str() for o in osmium.FileProcessor(str(pbf)).with_filter(EmptyTagFilter()))


@pytest.mark.parametrize("pbf", [HELSINKI, LIECHTENSTEIN, ANDORRA], ids=lambda p: p.stem)
def test_counts_agree_with_independent_readers(tmp_path_factory, pbf):
    db = build_db(tmp_path_factory, pbf)
    expected = pyosmium_tagged_counts(pbf)
    with skyscript_db.connect(db, read_only=True) as con:
        ours = dict(con.execute(
            "select osm_type, count(*) from (select osm_type, osm_id from osm_objects "
            "union all select osm_type, osm_id from osm_rejects) group by 1").fetchall())
        duckdb_reader = dict(con.execute(
            "select kind::varchar, count(*) from ST_ReadOSM($p) where cardinality(tags) > 0 "
            "and kind in ('node', 'way', 'relation') group by 1", {"p": str(pbf)}).fetchall())
    assert ours == {"node": expected["n"], "way": expected["w"], "relation": expected["r"]}
    assert ours == duckdb_reader


def test_eleven_extracts_every_tagged_element_exactly_once(eleven_db):
    with skyscript_db.connect(eleven_db, read_only=True) as con:
        both = con.execute(
            "select count(*) from osm_objects o join osm_rejects r using (osm_type, osm_id)"
        ).fetchone()[0]
        dupes = con.execute(
            "select count(*) - count(distinct (osm_type, osm_id)) from osm_objects").fetchone()[0]
        missing = con.execute(
            "select count(*) from ST_ReadOSM($p) e where cardinality(e.tags) > 0 "
            "and e.kind in ('node', 'way', 'relation') and not exists ("
            " select 1 from (select osm_type, osm_id from osm_objects union all "
            " select osm_type, osm_id from osm_rejects) x "
            " where x.osm_type = e.kind::varchar and x.osm_id = e.id)", {"p": str(ELEVEN)}
        ).fetchone()[0]
    assert (both, dupes, missing) == (0, 0, 0)


def test_eleven_extracts_rejects_are_reported_not_fatal(eleven_db):
    with skyscript_db.connect(eleven_db, read_only=True) as con:
        reasons = dict(con.execute(
            "select split_part(reason, ':', 1), count(*) from osm_rejects group by 1").fetchall())
        null_reasons = con.execute(
            "select count(*) from osm_rejects where reason is null or reason = ''").fetchone()[0]
    # 5,944 way-node references point outside the clipped extracts: those ways get no geometry.
    assert reasons["no geometry"] > 300
    assert reasons["area assembly failed"] > 0
    assert null_reasons == 0


def test_every_geometry_valid_and_of_its_kind(eleven_db):
    with skyscript_db.connect(eleven_db, read_only=True) as con:
        invalid = con.execute(
            "select count(*) from osm_objects where geom is null or not st_isvalid(geom)"
        ).fetchone()[0]
        pairs = set(con.execute(
            "select distinct kind, st_geometrytype(geom)::varchar from osm_objects").fetchall())
    assert invalid == 0
    assert pairs == {("point", "POINT"), ("line", "LINESTRING"), ("polygon", "POLYGON"),
                     ("polygon", "MULTIPOLYGON")}


def test_closed_way_polygons_agree_with_sql_rebuild(eleven_db):
    """Rebuild 400 closed-way polygons from ST_ReadOSM's node coordinates and way refs."""
    with skyscript_db.connect(eleven_db, read_only=True) as con:
        rows = con.execute(
            """
            with sample as (
                select osm_id, geom from osm_objects
                where osm_type = 'way' and kind = 'polygon'
                order by hash(osm_id) limit 400
            ),
            raw as (select kind, id, refs, lat, lon from ST_ReadOSM($p)),
            refs as (
                select w.id, unnest(w.refs) as ref, generate_subscripts(w.refs, 1) as pos
                from raw w join sample s on s.osm_id = w.id where w.kind = 'way'
            ),
            rebuilt as (
                select r.id, st_makepolygon(st_makeline(list(st_point(n.lon, n.lat) order by r.pos)))
                    as geom
                from refs r join raw n on n.kind = 'node' and n.id = r.ref
                group by r.id
            )
            select s.osm_id, st_area(s.geom), st_area(b.geom)
            from sample s join rebuilt b on b.id = s.osm_id
            """,
            {"p": str(ELEVEN)},
        ).fetchall()
    assert len(rows) == 400
    off = [(osm_id, ours, rebuilt) for osm_id, ours, rebuilt in rows
           if abs(ours - rebuilt) > 0.005 * rebuilt]
    assert off == []


def test_tags_table_is_the_objects_tags(eleven_db):
    with skyscript_db.connect(eleven_db, read_only=True) as con:
        n_tags, n_from_maps = con.execute(
            "select (select count(*) from osm_tags), "
            "(select sum(cardinality(tags)) from osm_objects)").fetchone()
        buildings = con.execute(
            "select (select count(*) from osm_tags where key = 'building'), "
            "(select count(*) from osm_objects where tags['building'] is not null)").fetchone()
    assert n_tags == n_from_maps > 0
    assert buildings[0] == buildings[1] > 1000


def test_build_info_records_source_and_attribution(helsinki_db):
    with skyscript_db.connect(helsinki_db, read_only=True) as con:
        info = dict(con.execute("select key, value from build_info").fetchall())
        objects = con.execute("select count(*) from osm_objects").fetchone()[0]
    assert info["source_sha256"] == hashlib.sha256(HELSINKI.read_bytes()).hexdigest()
    assert info["source_bytes"] == str(HELSINKI.stat().st_size)
    assert "© OpenStreetMap contributors" in info["attribution"]
    assert int(info["points"]) + int(info["lines"]) + int(info["polygons"]) == objects
    assert info["duckdb_version"] == "1.5.5"


def test_ingest_twice_gives_same_tables(tmp_path):
    db = tmp_path / "twice.duckdb"
    skyscript_db.build(shared_extract(HELSINKI), db, only="ingest")
    first = digests(db)
    skyscript_db.build(HELSINKI, db, only="ingest")
    second = digests(db)
    assert {k: v for k, v in second.items() if k != "stage_runs"} == \
        {k: v for k, v in first.items() if k != "stage_runs"}
    assert second["stage_runs"][0] == first["stage_runs"][0] + 1


def test_an_older_databases_tags_table_becomes_the_view(tmp_path, helsinki_db):
    """Databases built before osm_tags became a view over osm_objects hold it as a table: the
    next ingest replaces it, with the same rows."""
    db = tmp_path / "copy.duckdb"
    shutil.copy(helsinki_db, db)
    before = digests(db)
    with skyscript_db.connect(db) as con:
        con.execute("create table old_tags as select * from osm_tags")
        con.execute("drop view osm_tags")
        con.execute("alter table old_tags rename to osm_tags")
    skyscript_db.build(HELSINKI, db, only="ingest")
    with skyscript_db.connect(db, read_only=True) as con:
        kinds = con.execute("select table_type from information_schema.tables "
                            "where table_name = 'osm_tags'").fetchall()
    assert kinds == [("VIEW",)]
    assert digests(db)["osm_tags"] == before["osm_tags"]


@pytest.mark.parametrize("damage", ["missing", "not_pbf", "truncated", "directory"])
def test_bad_input_names_file_and_leaves_database_unchanged(tmp_path, helsinki_db, damage):
    db = tmp_path / "copy.duckdb"
    shutil.copy(helsinki_db, db)
    before = digests(db)
    bad = tmp_path / f"{damage}.osm.pbf"
    if damage == "not_pbf":
        bad.write_text("<osm>this is XML, not PBF</osm>")
    elif damage == "truncated":
        bad.write_bytes(shared_extract(HELSINKI).read_bytes()[:300_000])
    elif damage == "directory":
        bad.mkdir()
    with pytest.raises(InputError) as error:
        skyscript_db.build(bad, db, only="ingest")
    message = str(error.value)
    assert message.startswith(str(bad)) and "\n" not in message
    assert digests(db) == before


def test_an_interrupted_ingest_leaves_the_database_unchanged(tmp_path, helsinki_db, monkeypatch):
    """Every table users see is written in the stage's transaction: an interrupt in the last
    step before it (classifying the elements) loses none of the earlier build."""
    db = tmp_path / "copy.duckdb"
    shutil.copy(helsinki_db, db)
    before = digests(db)
    run = skyscript_db.queries.Query.run

    def interrupted(self, con, **params):
        if self.name == "classify":
            raise KeyboardInterrupt
        return run(self, con, **params)

    monkeypatch.setattr(skyscript_db.queries.Query, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        skyscript_db.build(shared_extract(LIECHTENSTEIN), db, only="ingest")
    assert digests(db) == before


def test_a_file_cut_in_its_last_block_fails_too(tmp_path, helsinki_db):
    """Cut 1,000 bytes before its end, inside the last blocks: reading it fails."""
    db = tmp_path / "copy.duckdb"
    shutil.copy(helsinki_db, db)
    before = digests(db)
    data = shared_extract(HELSINKI).read_bytes()
    bad = tmp_path / "cut.osm.pbf"
    bad.write_bytes(data[: len(data) - 1000])
    with pytest.raises(InputError, match="truncated or corrupt"):
        skyscript_db.build(bad, db, only="ingest")
    assert digests(db) == before


def test_ways_built_in_parts_equal_ways_built_at_once():
    """A memory limit splits the way join into parts (by id hash); the geometries must not
    change. Run on the Helsinki extract's own staging tables, one part against three."""
    q = skyscript_db.queries.load("00_ingest.sql")
    area = {"clip": None, "west": 0, "south": 0, "east": 0, "north": 0}
    digest = ("select count(*), count(geom), sum(hash(osm_id, kind, st_aswkb(geom), valid, "
              "error)) from ingest_geometries")
    with skyscript_db.connect() as con:
        for name in ("create_elements", "create_geometries"):
            q[name].run(con)
        q["load_area_rules"].run(con, path=skyscript_db.queries.seed_path("area_rules.csv"))
        q["read_elements"].run(con, file=0, path=str(HELSINKI), **area)
        q["read_nodes"].run(con, path=str(HELSINKI))
        q["area_ways"].run(con, file=0)
        built = []
        for parts in (1, 3):
            con.execute("delete from ingest_geometries")
            for part in range(parts):
                q["way_nodes"].run(con, file=0, part=part, parts=parts)
                q["way_lines"].run(con)
                q["way_geometries"].run(con, file=0)
            built.append(con.execute(digest).fetchone())
        parts_now = q["way_parts"].row(con, file=0)["parts"]
        con.execute("set memory_limit = '8MB'")
        parts_tight = q["way_parts"].row(con, file=0)["parts"]
    assert built[0] == built[1] and built[0][1] > 4000
    assert (parts_now, parts_tight) == (1, 2)


def test_a_bad_memory_limit_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="memory limit 'lots'"):
        skyscript_db.build(HELSINKI, tmp_path / "x.duckdb", only="ingest", memory_limit="lots")
    assert not (tmp_path / "x.duckdb").exists()


def test_the_multipolygons_file_is_written_beside_the_database_then_removed(tmp_path,
                                                                            monkeypatch):
    """Not in /tmp, which is often small or in memory: a planet's file is tens of GB."""
    from skyscript_db.etl import osm

    seen = []
    assemble = osm.relation_areas

    def recorded(path, **options):
        seen.append((Path(path), Path(path).stat().st_size))
        return assemble(path, **options)

    monkeypatch.setattr(osm, "relation_areas", recorded)
    db = tmp_path / "here" / "x.duckdb"
    db.parent.mkdir()
    skyscript_db.build(shared_extract(HELSINKI), db, only="ingest")
    [(path, size)] = seen
    assert path.parent.parent == db.parent and size > 100_000
    assert not path.exists() and [f.name for f in db.parent.iterdir()] == ["x.duckdb"]


def test_relation_areas_assembled_from_the_small_file_equal_those_of_the_whole_extract(
        helsinki_db):
    """Ingest hands libosmium an OPL file of the multipolygons, their member ways and nodes,
    written by DuckDB; libosmium assembling the same relations from the whole PBF must give the
    same areas: each one stored (single parts as POLYGON) or rejected as invalid."""
    import pyarrow as pa

    from skyscript_db.etl import osm

    whole = pa.Table.from_batches(list(osm.relation_areas(shared_extract(HELSINKI))),
                                  schema=osm.AREA_SCHEMA)
    with skyscript_db.connect(helsinki_db, read_only=True) as con:
        con.register("whole", whole)
        missing, different, rejected, assembled = con.execute("""
            with built as (
                select w.osm_id, st_geomfromhexwkb(w.wkb_hex) as geom from whole as w
                where w.wkb_hex is not null
            ),
            expected as (
                select osm_id, if(st_numgeometries(geom) = 1, st_dump(geom)[1].geom, geom) as geom
                from built
            )
            select
                count(*) filter (where o.osm_id is null and r.osm_id is null),
                count(*) filter (where o.osm_id is not null
                                 and st_aswkb(o.geom) <> st_aswkb(e.geom)),
                count(*) filter (where r.reason like 'invalid geometry%'),
                count(*)
            from expected as e
            left join osm_objects as o on o.osm_type = 'relation' and o.osm_id = e.osm_id
            left join osm_rejects as r on r.osm_type = 'relation' and r.osm_id = e.osm_id
        """).fetchone()
        stored = con.execute("select count(*) from osm_objects where osm_type = 'relation' "
                             "and kind = 'polygon'").fetchone()[0]
    assert (missing, different) == (0, 0)
    assert assembled > 90 and stored + rejected == assembled
