"""Stage rewrite_captions (on demand): each pair's caption rewritten by a language model.

Reader (SQL, sql/caption_rewrites.sql: the prompts with no answer yet from this model), mapper
(requests to an OpenAI-compatible endpoint, at most `concurrency` in flight), writer (SQL: the
answers, committed batch by batch, so a stopped run keeps what it was answered and a rerun sends
only the rest). A request that still fails after its retries is recorded in
caption_rewrite_errors and sent again by the next run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import pyarrow as pa

from skyscript_db import captions, queries
from skyscript_db.config import Options, RewriteConfig
from skyscript_db.db import registered
from skyscript_db.errors import ConfigError
from skyscript_db.etl.chat import Answer, ChatClient, RequestFailed
from skyscript_db.etl.stage import Context, StageResult, fingerprint, transaction

log = logging.getLogger(__name__)

STAGE = "rewrite_captions"
SQL = captions.REWRITES_SQL
FLUSH = 32  # answers per committed batch
PAGE = 256


@dataclass
class _Outcomes:
    """Answers and failures not yet written, and the run's counts."""

    answers: list[tuple[dict, Answer]] = field(default_factory=list)
    failures: list[tuple[dict, RequestFailed]] = field(default_factory=list)
    sent: int = 0
    tokens: int = 0
    rewritten: int = 0
    failed: int = 0

    @property
    def done(self) -> int:
        """Prompts answered or given up on, written or not."""
        return self.rewritten + self.failed + len(self.answers) + len(self.failures)


@dataclass(frozen=True)
class RewriteStage:
    name: str = STAGE
    upstream: tuple[str, ...] = ("captions",)
    transactional: bool = False

    def fingerprint(self, ctx: Context, options: Options) -> str:
        config = _config(options)
        return fingerprint(config.model, config.prompt)

    def run(self, ctx: Context, options: Options) -> StageResult:
        config, con, q = _config(options), ctx.con, queries.load(SQL)
        with transaction(con):
            q["create"].run(con)
            q["create_errors"].run(con)
        q["prompts"].run(con, template=config.prompt, model=config.model, limit=config.limit)
        total = q["pending_count"].row(con)["n"]
        client = ChatClient(config.endpoint, config.model, os.environ.get(config.api_key_env),
                            config.max_tokens, config.timeout_s, config.attempts, config.backoff_s)
        out = _Outcomes()
        try:
            stopped = _send(ctx, config, client, out, total)
        finally:
            client.close()
            _flush(ctx, config, out)
        summary = q["summary"].row(con, model=config.model)
        info = {"model": config.model, "endpoint": config.endpoint, "sent": out.sent,
                "rewritten": out.rewritten, "failed": out.failed, "tokens": out.tokens,
                "stopped_by": stopped, **summary}
        log.info("%s %s: %d prompts pending, %d rewritten, %d failed, %d tokens%s", STAGE,
                 config.model, total, out.rewritten, out.failed, out.tokens,
                 f", stopped by the token budget of {config.token_budget:,}" if stopped else "")
        return StageResult(total, out.rewritten, info=info)


def _send(ctx: Context, config: RewriteConfig, client: ChatClient, out: _Outcomes,
          total: int) -> str | None:
    """Keep `concurrency` requests in flight until every prompt is sent or the budget is
    spent; returns 'token_budget' when the budget stopped it."""
    prompts = _prompts(ctx)
    in_flight: dict[Future, dict] = {}
    progress, tokens_bar = ctx.progress(STAGE), ctx.progress(f"{STAGE} tokens")
    with ThreadPoolExecutor(config.concurrency, thread_name_prefix="rewrite") as pool:
        try:
            while True:
                spent = config.token_budget is not None and out.tokens >= config.token_budget
                while not spent and len(in_flight) < config.concurrency:
                    row = next(prompts, None)
                    if row is None:
                        break
                    in_flight[pool.submit(client.complete, row["prompt"])] = row
                    out.sent += 1
                if not in_flight:
                    return "token_budget" if spent else None
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    _collect(out, in_flight.pop(future), future)
                if len(out.answers) + len(out.failures) >= FLUSH:
                    _flush(ctx, config, out)
                if progress:
                    progress(out.done, total)
                if tokens_bar:
                    tokens_bar(out.tokens, config.token_budget)
        except BaseException:
            for future in in_flight:
                future.cancel()
            raise


def _collect(out: _Outcomes, row: dict, future: Future) -> None:
    try:
        answer = future.result()
    except RequestFailed as e:
        out.failures.append((row, e))
        return
    out.answers.append((row, answer))
    out.tokens += answer.tokens


def _flush(ctx: Context, config: RewriteConfig, out: _Outcomes) -> None:
    """Write the answers and failures collected so far, in one transaction."""
    if not out.answers and not out.failures:
        return
    q, con = queries.load(SQL), ctx.con
    answers = pa.table({
        "pair_id": pa.array([r["pair_id"] for r, _ in out.answers], pa.int64()),
        "prompt_sha": pa.array([r["prompt_sha"] for r, _ in out.answers], pa.string()),
        "text": pa.array([a.text for _, a in out.answers], pa.string()),
        "tokens": pa.array([a.tokens for _, a in out.answers], pa.int32()),
    })
    failures = pa.table({
        "pair_id": pa.array([r["pair_id"] for r, _ in out.failures], pa.int64()),
        "prompt_sha": pa.array([r["prompt_sha"] for r, _ in out.failures], pa.string()),
        "error": pa.array([str(e) for _, e in out.failures], pa.string()),
        "attempts": pa.array([e.attempts for _, e in out.failures], pa.int32()),
    })
    with transaction(con):
        with registered(con, rewrite_batch=answers, rewrite_failures=failures):
            q["insert"].run(con, model=config.model)
            q["insert_errors"].run(con, model=config.model)
    out.rewritten += len(out.answers)
    out.failed += len(out.failures)
    out.answers.clear()
    out.failures.clear()


def _prompts(ctx: Context) -> Iterator[dict]:
    for page in queries.load(SQL)["next_batch"].pages(ctx.con, PAGE):
        yield from page


def _config(options: Options) -> RewriteConfig:
    if options.rewrite is None:
        raise ConfigError(f"{STAGE}: no endpoint and model given (skyscript-db captions rewrite "
                          "--endpoint URL --model NAME)")
    return options.rewrite
