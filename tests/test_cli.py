"""The skyscript-db command line, run as a user would run it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from skyscript_db.cli import app

from conftest import HELSINKI, copy_tag_cache, shared_extract

runner = CliRunner()
COMMANDS = ["ingest", "build", "sql", "info", "tags", "export", "train", "eval", "make-benchmark"]


@pytest.mark.parametrize("command", [[]] + [[c] for c in COMMANDS])
def test_help_on_every_command(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_build_then_skip_when_up_to_date(tmp_path, helsinki_built):
    db = tmp_path / "b.duckdb"
    copy_tag_cache(helsinki_built, db)
    pbf = str(shared_extract(HELSINKI))
    first = runner.invoke(app, ["build", pbf, "--db", str(db)])
    second = runner.invoke(app, ["build", pbf, "--db", str(db)])
    assert first.exit_code == 0 and "ran ingest" in first.output
    assert second.exit_code == 0 and "up to date" in second.output


def test_sql_formats(town_built, tmp_path):
    query = "select kind, count(*) as n from osm_objects group by kind order by kind"
    table = runner.invoke(app, ["sql", query, "--db", str(town_built)])
    csv = runner.invoke(app, ["sql", query, "--db", str(town_built), "-f", "csv"])
    lines = runner.invoke(app, ["sql", query, "--db", str(town_built), "-f", "json"])
    out = tmp_path / "kinds.parquet"
    parquet = runner.invoke(app, ["sql", query, "--db", str(town_built), "-f", "parquet", "-o",
                                  str(out)])
    assert table.exit_code == csv.exit_code == lines.exit_code == parquet.exit_code == 0
    assert "polygon" in table.output
    assert csv.output.splitlines()[0] == '"kind","n"'
    rows = [json.loads(line) for line in lines.output.splitlines()]
    assert [r["kind"] for r in rows] == ["line", "point", "polygon"] and all(r["n"] > 0 for r in rows)
    import pyarrow.parquet as pq
    assert pq.read_table(out).num_rows == 3


def test_info_lists_build_and_tables(town_built):
    result = runner.invoke(app, ["info", "--db", str(town_built)])
    assert result.exit_code == 0
    for word in ("source_sha256", "attribution", "osm_objects", "osm_rejects", "osm_tags",
                 "ingest"):
        assert word in result.output


@pytest.mark.parametrize("args, message", [
    (["ingest", "/no/such.osm.pbf"], "error: /no/such.osm.pbf: no such file"),
    (["sql", "drop table osm_objects"], "error: only read statements are allowed"),
    (["sql", "select nope from osm_objects"], "error: Binder Error"),
    (["info"], "no build_info table"),
    (["embed", "--score-caption", "bogus"], "error: score_caption must be one of title"),
    (["retrieve", "anything", "-k", "0"], "error: k must be at least 1, got 0"),
    (["build", "--only", "bogus"], "error: no stage 'bogus'; stages are ingest"),
    (["export", "out", "--splits", "a,b"], "error: --splits 'a,b': give three shares"),
])
def test_errors_are_one_line_with_nonzero_exit(tmp_path, town_built, args, message):
    db = town_built if args[0] == "sql" else tmp_path / "empty.duckdb"
    if args[0] == "info":
        import skyscript_db
        skyscript_db.connect(db).close()
    # A real process, so stderr and the exit code are what a shell sees.
    proc = subprocess.run([sys.executable, "-m", "skyscript_db", *args, "--db", str(db)],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_new_user_run_command_by_command(town_built, tmp_path):
    """The new user's run, as commands: their own raster (`add-imagery`), a town drawn over it
    (on Seurasaari), a catalog build with no Earth Engine account. `fetch-images` fetches the
    raster's requests, leaves Earth Engine's untried (none `failed`) and ends with one error
    naming the fix; `build --collections LOCAL_MINE` plans every request on the raster; then
    `fetch-images`, `embed` and `index` finish the dataset, and no crop over 5 % nodata is ok."""
    import rasterio
    from affine import Affine

    from conftest import IMAGERY
    from osm_inline import town

    pbf = town(tmp_path / "seurasaari.osm.pbf", blocks=3, origin=(24.879, 60.177))
    db = tmp_path / "mine.duckdb"
    copy_tag_cache(town_built, db)
    # the real Sentinel-2 raster resampled to 1 m, as fine as the town's tags need
    with rasterio.open(IMAGERY / "sentinel2-helsinki-seurasaari-2021.tif") as src:
        height, width = src.height * 10, src.width * 10
        profile = src.profile | {"count": 3, "height": height, "width": width,
                                 "transform": src.transform @ Affine.scale(0.1)}
        pixels = src.read([3, 2, 1], out_shape=(3, height, width))
    with rasterio.open(tmp_path / "mine.tif", "w", **profile) as out:
        out.write(pixels)

    def run(*args: str) -> str:
        result = runner.invoke(app, [*args, "--db", str(db)])
        assert result.exit_code == 0, result.output
        return result.output

    def outcomes() -> list[dict]:
        found = run("sql", "select collection_code, status, count(*) as n from image_requests "
                    "left join images using (pair_id) group by all", "-f", "json")
        return [json.loads(line) for line in found.splitlines()]

    assert "LOCAL_MINE" in run("add-imagery", str(tmp_path / "mine.tif"))
    town_options = ("--fraction", "1", "--rare-threshold", "3", "--rare-cap", "10")
    run("build", str(pbf), *town_options, "--imagery", "catalog")
    for _ in range(2):  # a rerun changes nothing
        failed = runner.invoke(app, ["fetch-images", "--db", str(db)])
        assert failed.exit_code != 0
        assert "earthengine authenticate" in failed.output and "--gee-project" in failed.output
        assert "--collections" in failed.output
        rows = [(r["collection_code"], r["status"]) for r in outcomes()]
        assert {code for code, status in rows if status} == {"LOCAL_MINE"}
        assert {code for code, status in rows if status is None} - {"LOCAL_MINE"}
    run("build", str(pbf), *town_options, "--imagery", "catalog", "--collections", "LOCAL_MINE")
    run("fetch-images")
    rows = outcomes()
    assert {r["collection_code"] for r in rows} == {"LOCAL_MINE"}
    assert all(r["status"] in ("ok", "partial_coverage") for r in rows), rows
    worst = run("sql", "select min(coverage) from images where status = 'ok'", "-f", "csv")
    assert float(worst.split()[-1]) >= 0.95
    run("embed", "--model", "skyscript-tiny")
    shutil.rmtree(tmp_path / "mine_index")
    run("index")
    assert sorted(p.suffix for p in (tmp_path / "mine_index").iterdir() if p.suffix == ".faiss")
    assert "LOCAL_MINE" in run("retrieve", "a building", "-k", "3")
