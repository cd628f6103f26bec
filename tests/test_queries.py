"""The sql/ loader: named sections, bound parameters, errors with file and line."""

from __future__ import annotations

import duckdb
import pytest

from skyscript_db import queries
from skyscript_db.errors import SqlFileError


def test_every_shipped_sql_file_parses_and_names_its_parameters():
    ingest = queries.load("00_ingest.sql")
    assert list(ingest)[:3] == ["create_elements", "read_elements", "read_nodes"]
    assert ingest["read_elements"].params == {"file", "path", "clip", "west", "south", "east",
                                              "north"}
    assert queries.load("stage_runs.sql")["record"].params >= {"stage", "fingerprint"}


def test_parse_errors_name_file_and_line():
    with pytest.raises(SqlFileError, match=r"sql/x.sql:3: section 'a' defined twice"):
        queries.parse("-- name: a\nselect 1;\n-- name: a\nselect 2;", "x.sql")
    with pytest.raises(SqlFileError, match=r"sql/x.sql:1: section 'a' is empty"):
        queries.parse("-- name: a\n-- only a comment\n-- name: b\nselect 1", "x.sql")
    with pytest.raises(SqlFileError, match="no '-- name:' sections"):
        queries.parse("select 1", "x.sql")


def test_run_binds_parameters_and_reports_where_it_failed():
    q = queries.parse("-- header\n\n-- name: good\nselect $n + 1\n-- name: bad\nselect nope", "t.sql")
    con = duckdb.connect()
    assert q["good"].run(con, n=41).fetchone()[0] == 42
    with pytest.raises(SqlFileError, match=r"takes parameters \['n'\], was given \[\]"):
        q["good"].run(con)
    with pytest.raises(duckdb.BinderException, match=r"sql/t.sql:5 \(bad\)"):
        q["bad"].run(con)
