"""Stages that are one SQL file under sql/: its sections run in order, in one transaction.

A section's `$param`s are bound from the build config, the stage's own seed (`$seed`) and the
paths of the seed CSVs (`$<name>_csv`). The last section, `summary`, returns one row of counts
with at least `rows_in` and `rows_out`; it is logged and kept in stage_runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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

    def run(self, ctx: Context, options: Options) -> StageResult:
        summary = run_sections(ctx.con, self.file, self.params(options.build))
        log.info("%s: %s", self.name, "; ".join(
            f"{k} {v:,}" if isinstance(v, int | float) else f"{k}: {v}"
            for k, v in summary.items()))
        return StageResult(summary["rows_in"], summary["rows_out"], info=summary)


def run_sections(con: duckdb.DuckDBPyConnection, file: str, params: dict[str, Any]) -> dict:
    """Run every section of sql/<file> in order; return the `summary` row as a dict."""
    queries.create_macros(con)
    summary: dict[str, Any] = {}
    for name, query in queries.load(file).items():
        missing = query.params - params.keys()
        if missing:
            raise SqlFileError(f"{query.where}: no value for {sorted(missing)}")
        bound = {p: params[p] for p in query.params}
        if name == "summary":
            summary = query.row(con, **bound)
        else:
            query.run(con, **bound)
    return summary
