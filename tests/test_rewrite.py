"""captions rewrite: a language model's captions from a chat endpoint on 127.0.0.1."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

import skyscript_db
from skyscript_db.cli import app
from skyscript_db.config import EmbedConfig, ExportConfig, Options, RewriteConfig
from skyscript_db.errors import ConfigError

from chat_server import TOKENS, ChatServer, answer_for
from fakes import FAKE_MODELS
from conftest import copy_db, run_stage


def rewrite(db: Path, server: ChatServer, **changes) -> dict:
    config = RewriteConfig(server.url, "fake-llm", concurrency=3, backoff_s=0.01,
                           timeout_s=1.0, attempts=3)
    options = Options(rewrite=replace(config, **changes))
    return run_stage(db, "rewrite_captions", options).info


def table(db: Path, sql: str) -> list[tuple]:
    with skyscript_db.connect(db, read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture
def db(town_requests: Path, tmp_path: Path) -> Path:
    return copy_db(town_requests, tmp_path)


def test_every_pair_once_then_a_rerun_sends_nothing(db):
    n_pairs = table(db, "select count(*) from captions")[0][0]
    with ChatServer(faults=["429", "hang", "500"], retry_after="1", hang_s=3.0) as server:
        info = rewrite(db, server)
        first = len(server.log)
        again = rewrite(db, server)
    assert info["rewritten"] == n_pairs and info["failed"] == 0
    assert info["tokens"] == TOKENS * n_pairs
    assert first == n_pairs + 3  # each fault cost one retry
    assert again["sent"] == 0 and len(server.log) == first
    rows = table(db, "select pair_id, model, text, tokens from caption_rewrites")
    assert len({r[0] for r in rows}) == len(rows) == n_pairs
    prompts = {p.prompt for p in server.log}
    assert {r[2] for r in rows} <= {answer_for(p) for p in prompts}
    # the prompt carries the visible tags and the preset names, never an invisible name
    sample = next(iter(prompts))
    assert "Main object's OpenStreetMap tags: " in sample and "m per pixel" in sample
    assert all("addr:housenumber" not in p and "Katu" not in p for p in prompts)
    # the 429 said Retry-After: 1, and its retry came no sooner
    i = next(i for i, a in enumerate(server.log) if a.status == 429)
    retry = next(a for a in server.log[i + 1:] if a.prompt == server.log[i].prompt)
    assert retry.at - server.log[i].at >= 0.9


def test_failures_are_retried_then_recorded_and_sent_again(db):
    unlucky = table(db, "select min(pair_id) from captions")[0][0]
    bad: set[str] = set()

    def fail(prompt: str) -> bool:  # the first prompt seen always fails
        if not bad:
            bad.add(prompt)
        return prompt in bad

    with ChatServer(fail=fail) as server:
        info = rewrite(db, server, attempts=2, concurrency=1)
        sent = sum(a.prompt in bad for a in server.log)
    assert info["failed"] == 1 and sent == 2
    assert table(db, "select pair_id, attempts from caption_rewrite_errors") == [(unlucky, 2)]
    assert table(db, f"select count(*) from caption_rewrites where pair_id = {unlucky}") == [(0,)]
    with ChatServer() as server:
        again = rewrite(db, server)
    assert again["sent"] == 1 and again["rewritten"] == 1
    assert [a.prompt for a in server.log] == list(bad)


def test_the_token_budget_stops_the_run_cleanly(db):
    with ChatServer() as server:
        info = rewrite(db, server, token_budget=5 * TOKENS, concurrency=1)
        assert info["stopped_by"] == "token_budget" and info["rewritten"] == 5
        assert len(server.log) == 5
        assert table(db, "select count(*), sum(tokens) from caption_rewrites") == [(5, 50)]
        rest = rewrite(db, server, limit=3)
    assert rest["sent"] == 3 and rest["stopped_by"] is None


def test_a_wrong_key_stops_the_run_and_keeps_only_whole_answers(db):
    with ChatServer(faults=["", "", "401"]) as server:
        with pytest.raises(ConfigError, match="HTTP 401, unauthorized"):
            rewrite(db, server, concurrency=1)
    rows = table(db, "select text from caption_rewrites")
    assert len(rows) == 2 and all(text in {answer_for(a.prompt) for a in server.log}
                                  for text, in rows)
    assert table(db, "select count(*) from stage_runs where stage = 'rewrite_captions'") == [(0,)]


def test_cli_rewrite_and_a_changed_prompt_asks_again(db, tmp_path):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Describe {names} in five words.")
    with ChatServer() as server:
        args = ["captions", "rewrite", "--db", str(db), "--endpoint", server.url,
                "--model", "fake-llm", "--limit", "4"]
        first = CliRunner().invoke(app, args)
        second = CliRunner().invoke(app, args + ["--prompt-file", str(prompt)])
        prompts = [a.prompt for a in server.log]
    assert first.exit_code == 0, first.output
    assert "4 captions rewritten by fake-llm" in first.output
    assert second.exit_code == 0 and len(prompts) == 8
    assert all(p.startswith("Describe ") for p in prompts[4:])
    assert table(db, "select count(distinct prompt_sha) from caption_rewrites") == [(8,)]


def test_rewrites_scored_by_embed_and_exported(town_built, tmp_path):
    """embed --score-caption rewrite:MODEL scores the pairs against the rewrites; export
    --caption writes any caption as the sample's text."""
    db = copy_db(town_built, tmp_path)
    with ChatServer() as server:
        rewrite(db, server, limit=6)
    embed = Options(embed=EmbedConfig(score_caption="rewrite:fake-llm"))
    run_stage(db, "embed", embed, models=FAKE_MODELS)
    pairs = table(db, "select p.caption, r.text, p.similarity, p.title_natural from pairs as p "
                      "join caption_rewrites as r using (pair_id)")
    assert len(pairs) == 6 == table(db, "select count(*) from pairs")[0][0]
    assert all(caption == text and similarity is not None for caption, text, similarity, _ in pairs)
    out = tmp_path / "export"
    run_stage(db, "export", Options(export=ExportConfig(out, caption="title_natural")))
    with (out / "train.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and all(r["caption"] == r["title_natural"] != "" for r in rows)
    with pytest.raises(ConfigError, match="caption must be one of"):
        ExportConfig(out, caption="rewrite:")
