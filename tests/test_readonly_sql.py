"""Ad hoc SQL reads and never writes: refused before DuckDB sees it, and the file is untouched."""

from __future__ import annotations

import hashlib

import pytest

import skyscript_db
from skyscript_db.errors import ReadOnlyViolation
from skyscript_db.readonly import pairs_query

READS = [
    "select count(*) from osm_objects",
    "with b as (select * from osm_tags where key = 'building') select count(*) from b",
    "from osm_objects limit 1",
    "describe osm_objects",
    "show tables",
    "summarize osm_tags",
    "explain select * from osm_objects",
    "select count(*) from osm_objects; select 1",
    "select * from osm_tags where value = '''; drop table osm_tags; --'",
]
WRITES = [
    "drop table osm_objects",
    "delete from osm_objects",
    "update osm_tags set value = 'x'",
    "insert into osm_tags values ('node', 1, 'a', 'b')",
    "create table t as select 1",
    "select 1; drop table osm_objects",
    "with x as (delete from osm_objects returning *) select * from x",
    "explain analyze delete from osm_objects",
    "copy osm_objects to '/tmp/out.csv'",
    "attach '/tmp/other.duckdb' as other",
    "install spatial",
    "set threads = 1",
    "pragma version",
    "checkpoint",
    "call pragma_version()",
    "alter table osm_tags rename to t",
    "",
]


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("query", READS)
def test_reads_run(town_built, query):
    before = sha256(town_built)
    skyscript_db.sql(query, db=town_built).fetchall()
    assert sha256(town_built) == before


@pytest.mark.parametrize("query", WRITES)
def test_writes_are_refused_before_reaching_duckdb(town_built, query):
    before = sha256(town_built)
    with pytest.raises(ReadOnlyViolation):
        skyscript_db.sql(query, db=town_built)
    assert sha256(town_built) == before


@pytest.mark.parametrize("where, sql", [
    (None, "SELECT pair_id FROM pairs"),
    ("collection_code = 'FI' and similarity_rank_pct < 20",
     "SELECT pair_id FROM pairs WHERE collection_code = 'FI' AND similarity_rank_pct < 20"),
    ("pair_id in (select pair_id from pairs where kind = 'point')",
     "SELECT pair_id FROM pairs WHERE pair_id IN (SELECT pair_id FROM pairs WHERE kind = 'point')"),
])
def test_where_becomes_a_predicate_of_a_query_over_pairs(where, sql):
    assert pairs_query(where) == sql


@pytest.mark.parametrize("where", [
    "1 = 1) union select 1; drop table images; --",
    "a = 1; drop table pairs",
    "exists (delete from images returning 1)",
    "",
])
def test_where_that_is_not_one_predicate_is_refused(where):
    with pytest.raises(ReadOnlyViolation):
        pairs_query(where)
