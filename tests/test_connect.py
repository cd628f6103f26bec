"""Offline DuckDB with spatial, and a clear message when the extension install is broken."""

from __future__ import annotations

import sys

import pytest

import skyscript_db
from skyscript_db.errors import DatabaseError, ExtensionError


def test_spatial_is_loaded_and_autoinstall_is_off():
    with skyscript_db.connect() as con:
        assert con.execute("select st_astext(st_point(1, 2))").fetchone()[0] == "POINT (1 2)"
        settings = dict(con.execute(
            "select name, value from duckdb_settings() "
            "where name in ('autoinstall_known_extensions', 'autoload_known_extensions')").fetchall())
    assert settings == {"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}


def test_missing_extension_wheel_says_how_to_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "duckdb_extensions", None)  # import now fails
    with pytest.raises(ExtensionError, match=r"pip install .*duckdb-extension-spatial==1\.5\.5"):
        skyscript_db.connect()


def test_extension_missing_from_wheel_says_how_to_fix(monkeypatch, tmp_path):
    """The wheel imports but installs nothing, and HOME has no extension either."""
    import duckdb_extensions

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(duckdb_extensions, "import_extension", lambda name, con=None: None)
    with pytest.raises(ExtensionError, match="failed to load .* pip install"):
        skyscript_db.connect()


def test_read_only_on_missing_database_names_it(tmp_path):
    with pytest.raises(DatabaseError, match="nope.duckdb: no such database"):
        skyscript_db.connect(tmp_path / "nope.duckdb", read_only=True)
