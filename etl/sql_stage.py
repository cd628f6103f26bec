"""Stages that are one SQL file under sql/: its sections run in order, in one transaction.

Sections named in `before_transaction` run first, outside the stage's transaction: they may only
build temp tables (gone with the connection, so a failure leaves the database as it was) from
upstream tables. DuckDB scans what a transaction wrote two to four times slower than committed
data, so heavy staging pays for running inside it.

A section's `$param`s are bound from the build config, the stage's own seed (`$seed`) and the
paths of the seed CSVs (`$<name>_csv`). The last section, `summary`, returns one row of counts
with at least `rows_in` and `rows_out`; it is logged and kept in stage_runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from skyscript_db import queries
from skyscript_db.config import BuildConfig, Options
from skyscript_db.errors import SqlFileError
from skyscript_db.etl.stage import Context, StageResult, fingerprint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SqlStage:
    """A stage defined by one SQL file, the seed CSVs it reads and the config fields it uses.
    `state`, when given, reads further inputs from the database (e.g. registered imagery) into
    the fingerprint."""

    name: str
    file: str
    upstream: tuple[str, ...]
    seeds: dict[str, str] = field(default_factory=dict)  # parameter name -> seed file
    config_fields: tuple[str, ...] = ()
    seeded: bool = False
    state: Callable[[duckdb.DuckDBPyConnection], Any] | None = None
    transactional: bool = True
    before_transaction: tuple[str, ...] = ()

    def params(self, config: BuildConfig) -> dict[str, Any]:
        # tuples bind as SQL lists
        params: dict[str, Any] = {f: list(v) if isinstance(v := getattr(config, f), tuple) else v
                                  for f in self.config_fields}
        params |= {name: queries.seed_path(file) for name, file in self.seeds.items()}
        if self.seeded:
            params["seed"] = config.stage_seed(self.name)
        return params

    def fingerprint(self, ctx: Context, options: Options) -> str:
        """Changes with the SQL, the seed files, the parameters and the `state`."""
        config = options.build
        texts = [queries.sql_text(self.file), queries.sql_text("macros.sql")]
        texts += [queries.seed_digest(file) for file in self.seeds.values()]
        config_params = {f: getattr(config, f) for f in self.config_fields}
        seed = config.stage_seed(self.name) if self.seeded else None
        state = self.state(ctx.con) if self.state else None
        return fingerprint(texts, config_params, seed, state)

    def prepare(self, ctx: Context, options: Options) -> None:
        """The `before_transaction` sections: temp tables only."""
        run_sections(ctx.con, self.file, self.params(options.build), self.before_transaction)

    def run(self, ctx: Context, options: Options) -> StageResult:
        names = [n for n in queries.load(self.file) if n not in self.before_transaction]
        summary = run_sections(ctx.con, self.file, self.params(options.build), names)
        log.info("%s: %s", self.name, "; ".join(
            f"{k} {v:,}" if isinstance(v, int | float) else f"{k}: {v}"
            for k, v in summary.items()))
        return StageResult(summary["rows_in"], summary["rows_out"], info=summary)


def run_sections(con: duckdb.DuckDBPyConnection, file: str, params: dict[str, Any],
                 names: Iterable[str] | None = None) -> dict:
    """Run the sections of sql/<file> (all, or those `names`) in file order; return the
    `summary` row as a dict ({} if it did not run)."""
    queries.create_macros(con)
    summary: dict[str, Any] = {}
    chosen = set(queries.load(file) if names is None else names)
    if unknown := chosen - queries.load(file).keys():
        raise SqlFileError(f"sql/{file}: no section {', '.join(sorted(unknown))}")
    for name, query in queries.load(file).items():
        if name not in chosen:
            continue
        missing = query.params - params.keys()
        if missing:
            raise SqlFileError(f"{query.where}: no value for {sorted(missing)}")
        bound = {p: params[p] for p in query.params}
        if name == "summary":
            summary = query.row(con, **bound)
        else:
            query.run(con, **bound)
    return summary
