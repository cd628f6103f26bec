"""A plain (non-editable) install ships sql/ and etl/ inside the package and finds them."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True)
    return next(out.glob("skyscript_db-*.whl"))


def test_wheel_layout(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "skyscript_db/_sql/00_ingest.sql" in names
    assert "skyscript_db/_sql/seeds/area_rules.csv" in names
    assert {"skyscript_db/etl/osm.py", "skyscript_db/etl/imagery/stac.py",
            "skyscript_db/cli/build.py", "skyscript_db/_sql/web.sql",
            "skyscript_db/web/static/index.html", "skyscript_db/web/static/app.js",
            "skyscript_db/web/static/style.css", "skyscript_db/_sql/caption_rewrites.sql",
            "skyscript_db/_sql/seeds/id_presets/names.parquet",
            "skyscript_db/_sql/seeds/id_presets/presets.csv"} <= names
    assert not any(n.startswith(("etl/", "sql/", "tests/")) for n in names)


def test_installed_package_runs_its_sql(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                    str(wheel)], check=True, capture_output=True)
    code = ("import skyscript_db, skyscript_db.queries as q; "
            "assert skyscript_db.__file__.startswith(%r); "
            "con = skyscript_db.connect(); q.load('00_ingest.sql')['load_area_rules']"
            ".run(con, path=q.seed_path('area_rules.csv')); "
            "print(con.execute('select count(*) from ingest_area_rules').fetchone()[0]); "
            "print(skyscript_db.caption({'amenity': 'parking'}).title_natural)") % str(target)
    env = {**os.environ, "PYTHONPATH": str(target)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rules, natural = proc.stdout.split("\n")[:2]
    assert int(rules) > 20 and natural == "Parking"  # the iD preset seeds are installed too


def test_layers_import_one_way(wheel, tmp_path):
    """The import contract of .importlinter, on the installed layout (there `etl/` is
    skyscript_db.etl, as users import it)."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--config", str(ROOT / ".importlinter"), "--no-cache"],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(target)},
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Contracts: 3 kept, 0 broken" in proc.stdout


def test_no_module_is_a_big_room():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines())
             for folder in ("skyscript_db", "etl") for p in (ROOT / folder).rglob("*.py")}
    assert {p: n for p, n in sizes.items() if n > 300} == {}
