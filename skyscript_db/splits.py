"""The export's geographic splits (sql/95_export.sql), as the export writes them and the web
page shows them: the kept pairs located in their grid cells, then each block in one split."""

from __future__ import annotations

import logging
from typing import Any

import duckdb

from skyscript_db import queries
from skyscript_db.config import ExportConfig

log = logging.getLogger(__name__)

SQL = "95_export.sql"
SPLITS = ("train", "validation", "test")
SHARE_TOLERANCE = 0.03  # a split further than this from its share is warned about


def locate_pairs(con: duckdb.DuckDBPyConnection, config: ExportConfig) -> None:
    """Temp table export_located: the pairs the export keeps (from view export_candidates), each
    with the grid cell of its image centre."""
    queries.load(SQL)["export_located"].run(con, caption=config.caption, top_pct=config.top_pct,
                                            collection=config.collection)


def assign_splits(con: duckdb.DuckDBPyConnection, config: ExportConfig) -> dict[str, Any]:
    """Temp table export_pairs: each row of export_located in its split; returns the block
    side, the total and per split its pairs, cells, blocks and achieved share. A share more
    than SHARE_TOLERANCE off its target is logged as a warning."""
    q = queries.load(SQL)
    block_cells = q["block_cells"].row(con, block_cells=config.block_cells,
                                       max_block_share=config.max_block_share)["block_cells"]
    train, validation, _ = config.fractions
    q["export_pairs"].run(con, block_cells=block_cells, seed=config.seed, train=train,
                          validation=validation)
    counts = {s: {"pairs": 0, "cells": 0, "blocks": 0, "share": 0.0, "shards": 0}
              for s in SPLITS}
    for row in q["split_counts"].dicts(con):
        counts[row.pop("split")].update(row)
    total = sum(r["pairs"] for r in counts.values())
    for split, target in zip(SPLITS, config.fractions):
        share = counts[split]["share"]
        if total and abs(share - target) > SHARE_TOLERANCE:
            log.warning("export: split %s holds %.1f %% of the %d pairs, asked %.1f %% (blocks of "
                        "%d cells; %s)", split, 100 * share, total, 100 * target, block_cells,
                        "too few cells hold the pairs" if block_cells == 1 else
                        "a smaller --block-cells gives more, smaller blocks")
    return {"block_cells": block_cells, "pairs": total, "splits": counts}
