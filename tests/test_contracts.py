"""The table contracts of sql/contracts.toml (unique keys, not-null columns, accepted values),
checked on the inline town's build and, with ../shared, on real builds."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import skyscript_db
from skyscript_db.db import has_table

CONTRACTS = tomllib.loads((Path(__file__).parents[1] / "sql" / "contracts.toml").read_text())


def violations(db: Path) -> list[str]:
    """Every broken contract, as a readable line; the checks are SQL like dbt's."""
    found = []
    with skyscript_db.connect(db, read_only=True) as con:
        for table, contract in CONTRACTS.items():
            if not has_table(con, table):
                continue
            for columns in contract.get("unique", []):
                cols = ", ".join(columns)
                n = con.execute(f"select count(*) from (select {cols} from {table} "
                                f"group by all having count(*) > 1)").fetchone()[0]
                if n:
                    found.append(f"{table}({cols}): {n} duplicated keys")
            for column in contract.get("not_null", []):
                n = con.execute(f"select count(*) from {table} where {column} is null"
                                ).fetchone()[0]
                if n:
                    found.append(f"{table}.{column}: {n} nulls")
            for column, values in contract.get("accepted_values", {}).items():
                bad = con.execute(f"select distinct {column} from {table} where {column} is not "
                                  f"null and {column} not in (select unnest($v))",
                                  {"v": values}).fetchall()
                if bad:
                    found.append(f"{table}.{column}: values {bad} not in {values}")
    return found


def test_contracts_declare_existing_tables_and_columns(town_built):
    with skyscript_db.connect(town_built, read_only=True) as con:
        for table, contract in CONTRACTS.items():
            columns = {r[0] for r in con.execute(f"describe {table}").fetchall()}
            named = {c for group in contract.get("unique", []) for c in group}
            named |= set(contract.get("not_null", [])) | set(contract.get("accepted_values", {}))
            assert named <= columns, (table, named - columns)


def test_town_build_keeps_every_contract(town_built):
    assert violations(town_built) == []


@pytest.mark.parametrize("fixture", ["eleven_built", "embedded_db"])
def test_real_builds_keep_every_contract(fixture, request):
    request.applymarker(pytest.mark.shared)
    assert violations(request.getfixturevalue(fixture)) == []


def test_a_broken_contract_is_reported(town_built, tmp_path):
    db = tmp_path / "broken.duckdb"
    db.write_bytes(town_built.read_bytes())
    with skyscript_db.connect(db) as con:
        con.execute("insert into captions select * from captions limit 1")
        con.execute("update images set status = 'lost' where pair_id = "
                    "(select min(pair_id) from images)")
    assert sorted(violations(db)) == ["captions(pair_id): 1 duplicated keys",
                                      "images.status: values [('lost',)] not in "
                                      "['ok', 'failed', 'no_coverage']"]
