"""The SQL stages: each one file under sql/, its sections run in order inside one transaction.
(tag_visibility, between tag_stats and grid, also runs models: skyscript_db/tag_visibility.py.)

A section's `$param`s are bound from the build config, the stage's own seed (`$seed`) and the
paths of the seed CSVs (`$<name>_csv`). The last section, `summary`, returns one row of counts
with at least `rows_in` and `rows_out`; it is logged and kept in stage_runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb

from skyscript_db import queries
from skyscript_db.config import BuildConfig
from skyscript_db.errors import SqlFileError
from skyscript_db.stages import StageResult, fingerprint, run_stage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SqlStage:
    """A stage defined by one SQL file, the seed CSVs it reads and the config fields it uses."""

    name: str
    file: str
    seeds: dict[str, str]  # parameter name -> seed file
    config_fields: tuple[str, ...] = ()
    seeded: bool = False

    def params(self, config: BuildConfig) -> dict[str, Any]:
        params: dict[str, Any] = {f: getattr(config, f) for f in self.config_fields}
        params |= {name: queries.seed_path(file) for name, file in self.seeds.items()}
        if self.seeded:
            params["seed"] = config.stage_seed(self.name)
        return params

    def fingerprint(self, config: BuildConfig, upstream: str) -> str:
        """Changes with the upstream stage, the SQL, the seed files and the parameters."""
        texts = [queries.sql_text(self.file), queries.sql_text("macros.sql")]
        texts += [queries.sql_text(f"seeds/{file}") for file in self.seeds.values()]
        config_params = {f: getattr(config, f) for f in self.config_fields}
        seed = config.stage_seed(self.name) if self.seeded else None
        return fingerprint(self.name, upstream, texts, config_params, seed)

    def run(self, con: duckdb.DuckDBPyConnection, config: BuildConfig, stage_fingerprint: str,
            on_progress: Callable[[int, int], None] | None = None) -> StageResult:
        """Run the stage (SQL stages report no progress: each is a few statements)."""
        params = self.params(config)

        def body(c: duckdb.DuckDBPyConnection) -> StageResult:
            summary = run_sections(c, self.file, params)
            log.info("%s: %s", self.name, ", ".join(f"{k} {v:,}" for k, v in summary.items()))
            return StageResult(summary["rows_in"], summary["rows_out"], info=summary)

        return run_stage(con, self.name, stage_fingerprint, params, body)


STAGES = (
    SqlStage("tag_stats", "10_tag_stats.sql", {}),
    SqlStage("grid", "30_grid.sql", {}, ("n_cells", "fraction"), seeded=True),
    SqlStage("rare_tags", "40_rare_tags.sql", {}, ("rare_threshold", "rare_cap"), seeded=True),
    SqlStage("image_collections", "50_image_collections.sql",
             {"collections_csv": "image_collections.csv"}, ("imagery",)),
    SqlStage("benchmark", "55_benchmark.sql", {}, ("benchmark_classes", "benchmark_per_class"),
             seeded=True),
    SqlStage("image_requests", "60_image_requests.sql", {}, seeded=True),
    SqlStage("captions", "70_captions.sql",
             {"renames_csv": "caption_renames.csv", "styles_csv": "caption_key_styles.csv"},
             ("max_surrounding",)),
)
STAGE_NAMES = tuple(s.name for s in STAGES)


def create_macros(con: duckdb.DuckDBPyConnection) -> None:
    for macro in queries.load("macros.sql").values():
        macro.run(con)


def run_sections(con: duckdb.DuckDBPyConnection, file: str, params: dict[str, Any]) -> dict:
    """Run every section of sql/<file> in order; return the `summary` row as a dict."""
    create_macros(con)
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

