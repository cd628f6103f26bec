"""What the web page reads, from one database opened read-only and locked down.

The connection is read-only, and after setup external access is off and the configuration locked,
so no query (the SQL console's included) can read a file, attach a database or turn that back on.
Searches and pages share the one connection under a lock (its temp tables, the pairs snapshot
among them, are its own); each console query runs on a cursor of its own, which a timer
interrupts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import numpy as np

from skyscript_db import queries
from skyscript_db.config import ExportConfig
from skyscript_db.db import Paths, connect
from skyscript_db.errors import ConfigError, DatabaseError, NotFound, QueryTimeout
from skyscript_db.models import Models
from skyscript_db.readonly import check_read_only
from skyscript_db.retrieval import Searcher
from skyscript_db.splits import assign_splits, locate_pairs
from skyscript_db.vector_index import load_index

SQL = "web.sql"
MAX_K = 200
MAX_OBJECTS = 300  # objects drawn on a pair page
NEIGHBOURS = 8


@dataclass(frozen=True)
class ConsoleLimits:
    rows: int = 1000
    seconds: float = 10.0


def check_servable(db: str | Path) -> None:
    """Raise the error a server would meet at start (no database, no embeddings, a missing or
    stale index) without loading the model."""
    paths = Paths.of(db)
    with connect(paths.db, read_only=True) as con:
        load_index(con, paths)
        if not queries.load("web.sql")["has_caption_texts"].row(con)["found"]:
            raise DatabaseError(f"{paths.db}: embedded by an older release; run "
                                "`skyscript-db build --embed` (or `embed`) once")


class Dataset:
    """A served database: searches, pair pages, the overview and console queries, each a plain
    dict for the JSON API. Opening it loads the model and the index (a missing or stale one is
    the error `retrieve` gives) and prepares the snapshot; one per database file and process."""

    def __init__(self, db: str | Path, models: Models = Models(),
                 console: ConsoleLimits = ConsoleLimits()):
        self.paths = Paths.of(db)
        self.console = console
        self._lock = threading.Lock()
        self.con = connect(self.paths.db, read_only=True)
        try:
            self.searcher = Searcher(self.con, self.paths, models)
            self._prepare()
        except BaseException:
            self.con.close()
            raise

    def _prepare(self) -> None:
        q = queries.load(SQL)
        queries.create_macros(self.con)
        q["snapshot"].run(self.con)
        q["snapshot_key"].run(self.con)
        q["export_candidates"].run(self.con)
        default = ExportConfig()
        locate_pairs(self.con, default)
        assign_splits(self.con, default)
        q["pair_splits"].run(self.con)
        q["drop_export_pairs"].run(self.con)
        q["no_external_access"].run(self.con)
        q["lock_configuration"].run(self.con)

    def close(self) -> None:
        self.con.close()

    @contextmanager
    def _connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            yield self.con

    def _rows(self, name: str, **params: Any) -> list[dict[str, Any]]:
        with self._connection() as con:
            return queries.load(SQL)[name].dicts(con, **params)

    def search(self, query: np.ndarray, against: str, k: int,
               where: str | None) -> list[dict[str, Any]]:
        """Result cards, best first: rank, score, what the page shows and the image's URL."""
        if not 1 <= k <= MAX_K:
            raise ConfigError(f"k must be between 1 and {MAX_K}, got {k}")
        with self._connection() as con:
            ids, scores = self.searcher.nearest(query, against, k, where or None)
            cards = {row["pair_id"]: row for row in
                     queries.load(SQL)["cards"].dicts(con, ids=ids.tolist())}
        found = []
        for rank, (pair_id, score) in enumerate(zip(ids.tolist(), scores.tolist()), start=1):
            card = cards[pair_id]
            card.update(rank=rank, score=score, image_url=self.image_url(card.pop("image_path")))
            found.append(card)
        return found

    def search_text(self, text: str, k: int, where: str | None) -> list[dict[str, Any]]:
        if not text.strip():
            raise ConfigError("type something to search for")
        return self.search(self.searcher.text_vector(text), "image", k, where)

    def search_image(self, image: Any, k: int, where: str | None,
                     against: str) -> list[dict[str, Any]]:
        return self.search(self.searcher.image_vector(image), against, k, where)

    def image_url(self, path: str) -> str | None:
        """The URL under /images/ of an image path (absolute, or relative to the database's
        folder, as in the images table); None for an image outside the image folder. A string
        test, no file system call: it runs for every result (the file is checked when served)."""
        full = path if path.startswith("/") else f"{self.paths.root}/{path}"
        prefix = f"{self.paths.images}/"
        return "/images/" + quote(full[len(prefix):]) if full.startswith(prefix) else None

    def image_file(self, relative: str) -> Path:
        """The file behind /images/<relative>; anything outside the image folder is refused."""
        root = self.paths.images.resolve()
        target = (root / relative).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            raise NotFound(f"no image {relative!r}")
        return target

    def pair(self, pair_id: int) -> dict[str, Any]:
        """One pair: its columns, the request's rule values, split, the objects drawn over its
        image with their tags and verdicts, and its neighbours in embedding space."""
        found = self._rows("pair", pair_id=pair_id)
        if not found:
            raise NotFound(f"no pair {pair_id}")
        pair = found[0]
        pair["image_url"] = self.image_url(pair.pop("image_path"))
        pair["tags"] = dict(pair["tags"])
        pair["objects"] = self._rows("pair_objects", pair_id=pair_id, max_objects=MAX_OBJECTS)
        pair["neighbours"] = self._neighbours(pair_id)
        return pair

    def _neighbours(self, pair_id: int) -> list[dict[str, Any]]:
        vector = self._rows("image_vector", pair_id=pair_id)
        if not vector:
            return []
        query = np.asarray(vector[0]["image"], np.float32)[None, :]
        found = self.search(query, "image", NEIGHBOURS + 1, None)
        return [card for card in found if card["pair_id"] != pair_id][:NEIGHBOURS]

    def overview(self, bins: int = 40, top_tags: int = 25) -> dict[str, Any]:
        return {
            "summary": self._rows("summary")[0],
            "stages": self._rows("stages"),
            "collections": self._rows("collections"),
            "splits": self._rows("splits"),
            "top_tags": self._rows("top_tags", limit=top_tags),
            "histogram": self._rows("histogram", bins=bins),
            "cuts": self._rows("cuts"),
        }

    def sql(self, query: str) -> dict[str, Any]:
        """A read-only query from the console: at most `console.rows` rows, interrupted after
        `console.seconds`."""
        check_read_only(query)
        with self._connection() as con:
            cursor = con.cursor()
        timer = threading.Timer(self.console.seconds, cursor.interrupt)
        timer.start()
        try:
            cursor.execute(query)
            columns = [d[0] for d in cursor.description or ()]
            rows = cursor.fetchmany(self.console.rows + 1) if columns else []
        except duckdb.InterruptException as e:
            raise QueryTimeout(f"the query ran past {self.console.seconds:g} s and was "
                               "stopped") from e
        finally:
            timer.cancel()
            cursor.close()
        return {"columns": columns, "rows": [list(r) for r in rows[:self.console.rows]],
                "truncated": len(rows) > self.console.rows, "row_cap": self.console.rows}
