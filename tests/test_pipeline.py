"""The one pipeline on the inline town: stale stages rerun, fresh ones are skipped, fetch, embed
and index redo exactly what changed, `only` and `from_stage` work for every stage, and the
library and the CLI build the same database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import skyscript_db
from skyscript_db.config import Options
from skyscript_db.db import Paths
from skyscript_db.errors import ConfigError, DatabaseError, InputError
from skyscript_db.etl import pipeline

from conftest import QUICK_FETCH, TOWN_CONFIG, copy_db, copy_tag_cache
from fakes import FAKE_MODELS, FakeEncoder


def build(db: Path, **kwargs) -> list[str]:
    return skyscript_db.build(None, db, TOWN_CONFIG, fetch=QUICK_FETCH, embed=True,
                              models=FAKE_MODELS, **kwargs)


def stage_rows(db: Path, stage: str) -> list[tuple[int, int]]:
    with skyscript_db.connect(db, read_only=True) as con:
        return con.execute("select rows_in, rows_out from stage_runs where stage = $s "
                           "order by finished_at", {"s": stage}).fetchall()


def test_second_build_is_up_to_date_and_deleted_images_are_redone_exactly(town_built, tmp_path,
                                                                          monkeypatch):
    db = copy_db(town_built, tmp_path)
    assert build(db) == []  # every stage, fetch, embed and index included, is up to date
    files = sorted(Paths.of(db).images.rglob("*.jpg"))[:10]
    for file in files:
        file.unlink()
    embedded: list[int] = []
    images = FakeEncoder.images
    monkeypatch.setattr(FakeEncoder, "images",
                        lambda self, batch: embedded.append(len(batch)) or images(self, batch))
    assert build(db) == ["fetch_images", "embed", "index"]
    assert all(file.exists() for file in files)
    assert stage_rows(db, "fetch_images")[-1][0] == 10  # exactly the deleted ones fetched
    assert stage_rows(db, "embed")[-1][0] == 10 and sum(embedded) == 10
    assert len(stage_rows(db, "index")) == 2  # built once at first, rebuilt once now
    assert build(db) == []


def test_a_changed_option_reruns_its_stage_and_everything_below(town_built, tmp_path):
    db = copy_db(town_built, tmp_path)
    other = skyscript_db.BuildConfig(imagery="render", fraction=1.0, rare_threshold=3,
                                     rare_cap=10, max_surrounding=2)
    ran = skyscript_db.build(None, db, other, fetch=QUICK_FETCH, embed=True, models=FAKE_MODELS)
    assert ran == ["captions", "embed", "index"]  # images do not depend on captions
    with skyscript_db.connect(db, read_only=True) as con:
        stale = con.execute("select count(*) from embeddings e join captions c using (pair_id) "
                            "where e.input_key <> md5(concat_ws('|', (select path from images i "
                            "where i.pair_id = e.pair_id), (select fetched_at from images i "
                            "where i.pair_id = e.pair_id), c.title, c.title_multi_objects))"
                            ).fetchone()[0]
    assert stale == 0


@pytest.mark.parametrize("stage", [s.name for s in pipeline.BUILD])
def test_only_reruns_exactly_that_stage(town_built, tmp_path, stage):
    db = copy_db(town_built, tmp_path)
    assert build(db, only=stage) == [stage]
    assert build(db) == []  # a rerun with the same inputs leaves nothing stale


def test_from_reruns_the_stage_and_the_later_ones(town_built, tmp_path):
    db = copy_db(town_built, tmp_path)
    assert build(db, from_stage="image_requests") == ["image_requests", "captions",
                                                      "fetch_images", "embed", "index"]
    assert skyscript_db.build(None, db, TOWN_CONFIG, models=FAKE_MODELS,
                              from_stage="captions") == ["captions"]


def test_bad_stage_names_and_missing_upstream_are_clear_errors(town_pbf, tmp_path):
    with pytest.raises(ConfigError, match="no stage 'bogus'; stages are ingest"):
        skyscript_db.build(town_pbf, tmp_path / "x.duckdb", only="bogus")
    with pytest.raises(DatabaseError, match="x.duckdb: no such database"):
        skyscript_db.build(town_pbf, tmp_path / "x.duckdb", only="fetch_images")
    assert not (tmp_path / "x.duckdb").exists()
    skyscript_db.build(town_pbf, tmp_path / "x.duckdb", only="ingest")
    with pytest.raises(DatabaseError, match="stage image_requests has not run"):
        skyscript_db.build(town_pbf, tmp_path / "x.duckdb", only="fetch_images")


@pytest.mark.parametrize("caller_draws", [True, False])
def test_duckdb_draws_its_own_bar_only_when_the_caller_draws_none(town_pbf, tmp_path, monkeypatch,
                                                                   caller_draws):
    """DuckDB draws a bar on a terminal for statements over 2 s; beside the bar of a library
    caller's on_progress (tqdm, say) it would draw a second one."""
    open_duckdb = duckdb.connect

    def on_a_terminal(*args, **kwargs):  # under pytest, DuckDB's connections draw no bar
        con = open_duckdb(*args, **kwargs)
        con.execute("set enable_progress_bar = true")
        return con

    settings = []

    def connect(*args, **kwargs):
        con = skyscript_db.connect(*args, **kwargs)
        settings.append(con.execute("select current_setting('enable_progress_bar')").fetchone()[0])
        return con

    monkeypatch.setattr(duckdb, "connect", on_a_terminal)
    monkeypatch.setattr(pipeline, "connect", connect)
    pipeline.run(tmp_path / "x.duckdb", Options(pbf=(str(town_pbf),)), ["ingest"],
                 on_progress=(lambda stage, done, total: None) if caller_draws else None)
    assert settings == [not caller_draws]


def test_build_without_a_pbf_reuses_the_ingested_one(town_built, tmp_path):
    db = copy_db(town_built, tmp_path)
    assert skyscript_db.build(db=db, config=TOWN_CONFIG, models=FAKE_MODELS) == []
    assert skyscript_db.build(db=db, config=TOWN_CONFIG, models=FAKE_MODELS,
                              only="ingest") == ["ingest"]
    with skyscript_db.connect(db) as con:  # as if the extract had been moved away since
        con.execute("update build_info set value = replace(value, (select value from build_info "
                    "where key = 'source_file'), '/gone/town.osm.pbf') where key = 'sources'")
    assert skyscript_db.build(db=db, config=TOWN_CONFIG, models=FAKE_MODELS) == []
    with pytest.raises(InputError, match="/gone/town.osm.pbf: no such file"):
        skyscript_db.build(db=db, config=TOWN_CONFIG, models=FAKE_MODELS, only="ingest")


@pytest.mark.slow
def test_library_and_cli_build_the_same_database(town_pbf, tmp_path):
    """`skyscript_db.build(..., fetch=True, embed=True)` and the CLI line of `make build-db`
    give the same tables and counts, with real models: the tiny seeded CLIP for the images and,
    to keep the test short, its text tower as the tag encoder (MiniLM, the default, is what the
    `shared` fixtures build with)."""
    library, cli = tmp_path / "library" / "town.duckdb", tmp_path / "cli" / "town.duckdb"
    encoder = "open_clip:skyscript-tiny"
    skyscript_db.build(town_pbf, library, skyscript_db.BuildConfig(tag_encoder=encoder),
                       fetch=True, embed=True)
    cli.parent.mkdir()
    copy_tag_cache(library, cli)  # the same labels and encoder: the CLI build trains nothing
    proc = subprocess.run([sys.executable, "-m", "skyscript_db", "build", str(town_pbf), "--db",
                           str(cli), "--tag-encoder", encoder, "--fetch", "--embed"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    # closed and checkpointed before the console script's exit, which skips the collector
    assert not Path(f"{cli}.wal").exists()
    assert counts(library) == counts(cli)
    assert counts(library)["embeddings"] == counts(library)["images"] > 50


def counts(db: Path) -> dict[str, int]:
    with skyscript_db.connect(db, read_only=True) as con:
        tables = [r[0] for r in con.execute("select table_name from duckdb_tables() "
                                            "where not temporary").fetchall()]
        return {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in sorted(tables)}


def test_a_tag_model_pickled_by_an_older_layout_is_trained_again(town_built, tmp_path):
    db = copy_db(town_built, tmp_path)
    old = b"\x80\x04cskyscript_db.tag_classifier\nTagModel\n."  # the module it lived in before
    with skyscript_db.connect(db) as con:
        con.execute("update tag_models set model = $m", {"m": old})
    assert build(db, only="tag_visibility") == ["tag_visibility"]
    with skyscript_db.connect(db, read_only=True) as con:
        assert con.execute("select count(*) from tag_models where model = $m",
                           {"m": old}).fetchone()[0] == 0
    assert build(db) == []
